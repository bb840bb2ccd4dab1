/**
 * The DynamoDB store built from validated config. `TALLY_AWS_CLIENT` picks the implementation of
 * {@link DynamoApi}: `json` (default) is DynamoDB's JSON protocol signed by node:crypto
 * (src/store/dynamo-json.ts), about a quarter of the SDK client's CPU per call (docs/PERFORMANCE.md); `sdk`
 * is the AWS SDK v3 client (src/store/dynamo-sdk.ts), loaded by a dynamic import only when chosen.
 * Lambda entry points, the local stack and the tests all use these builders.
 */
import type { AggregatorDeps } from '../aggregate/aggregator';
import type { AggregatorConfig } from '../config';
import { aggregationWindow } from '../windows';
import { DynamoUsageStore } from '../store/dynamo';
import type { DynamoApi } from '../store/dynamo-api';
import { createDynamoApi } from './dynamo';
import type { AwsEndpoints } from './endpoints';

export { createDynamoApi, type ClosableDynamoApi } from './dynamo';

export function createStore(c: AggregatorConfig | (AwsEndpoints & { TALLY_TABLE_NAME: string }), db: DynamoApi = createDynamoApi(c)): DynamoUsageStore {
  const a = c as Partial<AggregatorConfig>;
  return new DynamoUsageStore(db, {
    tableName: c.TALLY_TABLE_NAME,
    ...(a.TALLY_DYNAMODB_CONCURRENCY !== undefined ? { concurrency: a.TALLY_DYNAMODB_CONCURRENCY } : {}),
    ...(a.TALLY_DEDUPE_TTL_DAYS !== undefined ? { dedupeTtlDays: a.TALLY_DEDUPE_TTL_DAYS, outboxTtlDays: a.TALLY_DEDUPE_TTL_DAYS } : {}),
  });
}

/** How calls are counted, from config: what the aggregator, the roll-up and the queries share. */
export function countingOf(c: Pick<AggregatorConfig, 'TALLY_WINDOW_SECONDS' | 'TALLY_GRACE_SECONDS' | 'TALLY_SHARDS' | 'TALLY_DIMENSIONS'>) {
  return { window: aggregationWindow(c.TALLY_WINDOW_SECONDS, c.TALLY_GRACE_SECONDS), shards: c.TALLY_SHARDS, dimensions: c.TALLY_DIMENSIONS };
}

/** The aggregator's dependencies: DynamoDB only (counting never depends on PostHog). */
export function createAggregatorDeps(c: AggregatorConfig, store: DynamoUsageStore = createStore(c)): AggregatorDeps {
  return { store, ...countingOf(c), staleMs: c.TALLY_CLAIM_STALE_SECONDS * 1000, concurrency: c.TALLY_DYNAMODB_CONCURRENCY };
}
