/**
 * What the roll-up builds from config: the PostHog sink (posthog-node) and its dependencies. Apart from
 * the other builders so that functions without a sink never bundle posthog-node.
 */
import type { AggregatorConfig } from '../config';
import { PostHogNodeSink } from '../sink/posthog';
import type { PostHogSink } from '../sink/types';
import type { DynamoUsageStore } from '../store/dynamo';
import type { RollupDeps } from '../rollup/rollup';
import { countingOf, createStore } from './store';

/** The PostHog sink of the config, or `undefined` when no PostHog key is configured. */
export function createPostHogSink(c: AggregatorConfig): PostHogSink | undefined {
  if (!c.POSTHOG_API_KEY) return undefined;
  return new PostHogNodeSink({
    apiKey: c.POSTHOG_API_KEY,
    host: c.POSTHOG_HOST,
    requestTimeoutMs: c.POSTHOG_REQUEST_TIMEOUT_MS,
    fetchRetryCount: c.POSTHOG_FETCH_RETRY_COUNT,
  });
}

/**
 * The roll-up's dependencies: the store and, when a PostHog key is configured, the sink. Without a
 * key the roll-up still counts; PostHog events wait in the outbox (and the log says so).
 */
export function createRollupDeps(c: AggregatorConfig, store: DynamoUsageStore = createStore(c)): RollupDeps {
  return { store, sink: createPostHogSink(c), ...countingOf(c), hourTtlDays: c.TALLY_MINUTE_TTL_DAYS, concurrency: c.TALLY_DYNAMODB_CONCURRENCY };
}
