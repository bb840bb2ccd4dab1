/**
 * What the roll-up builds from config: the PostHog sink (posthog-node) and its dependencies. Apart from
 * the other builders so that functions without a sink never bundle posthog-node.
 */
import type { AggregatorConfig } from '../config';
import { PostHogNodeSink } from '../sink/posthog';
import type { PostHogSink } from '../sink/types';
import type { DynamoUsageStore } from '../store/dynamo';
import { ProjectStore } from '../projects/store';
import type { RollupDeps } from '../rollup/rollup';
import { projectSinks } from '../rollup/sinks';
import { countingOf, createStore } from './store';

/** The PostHog sink of the config, or `undefined` when no PostHog key is configured. */
export function createPostHogSink(c: AggregatorConfig): PostHogSink | undefined {
  if (!c.POSTHOG_API_KEY) return undefined;
  return postHogSinkFor(c, { key: c.POSTHOG_API_KEY, host: c.POSTHOG_HOST });
}

/** A sink for one PostHog project (the deployment's, or a project's own), with the config's bounds. */
export function postHogSinkFor(c: Pick<AggregatorConfig, 'POSTHOG_REQUEST_TIMEOUT_MS' | 'POSTHOG_FETCH_RETRY_COUNT' | 'POSTHOG_HTTP'>, d: { key: string; host: string }): PostHogSink {
  return new PostHogNodeSink({
    apiKey: d.key,
    host: d.host,
    requestTimeoutMs: c.POSTHOG_REQUEST_TIMEOUT_MS,
    fetchRetryCount: c.POSTHOG_FETCH_RETRY_COUNT,
    ...(c.POSTHOG_HTTP === 'fetch' ? { fetch: globalThis.fetch } : {}),
  });
}

/**
 * The roll-up's dependencies: the store and the sinks — each project's own PostHog, else the
 * deployment's when a PostHog key is configured (src/rollup/sinks.ts). Without one, the roll-up still
 * counts; those PostHog events wait in the outbox (and the log says so).
 */
export function createRollupDeps(c: AggregatorConfig, store: DynamoUsageStore = createStore(c)): RollupDeps {
  const sink = createPostHogSink(c);
  const projects = new ProjectStore(store.db, c.TALLY_TABLE_NAME);
  const sinks = projectSinks({ defaultSink: sink, project: (id) => projects.getProject(id), make: (d) => postHogSinkFor(c, d) });
  return { store, sink, sinks, ...countingOf(c), hourTtlDays: c.TALLY_MINUTE_TTL_DAYS, concurrency: c.TALLY_DYNAMODB_CONCURRENCY };
}
