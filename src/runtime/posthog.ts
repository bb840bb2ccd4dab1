/**
 * What the aggregator and the outbox build from config: the PostHog sink (posthog-node) and the core
 * they share. Apart from the other builders so that functions without a sink never bundle posthog-node.
 */
import type { AggregatorConfig } from '../config';
import { PostHogNodeSink } from '../sink/posthog';
import type { PostHogSink } from '../sink/types';
import type { DynamoUsageStore } from '../store/dynamo';
import { createStore } from './store';

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
 * A sink for when the PostHog key is not available (yet): every send fails, so batch events stay in the
 * outbox and go out once the key resolves (functions/lazy.ts retries an optional secret and rebuilds the
 * handler). Counting never waits for PostHog's secret.
 */
export const unavailablePostHogSink: PostHogSink = {
  send: async (events) => {
    if (events.length > 0) throw new Error('POSTHOG_API_KEY is not available (yet): the events stay in the outbox');
  },
};

/** What the aggregator and the outbox share in AWS: the store, the PostHog sink (required) and the stale period. */
export function createAggregatorCore(c: AggregatorConfig): { store: DynamoUsageStore; sink: PostHogSink; staleMs: number; concurrency: number } {
  const sink = createPostHogSink(c);
  if (!sink) throw new Error('POSTHOG_API_KEY (or POSTHOG_API_KEY_SECRET_ARN) is required in AWS');
  return { store: createStore(c), sink, staleMs: c.TALLY_CLAIM_STALE_SECONDS * 1000, concurrency: c.TALLY_DYNAMODB_CONCURRENCY };
}
