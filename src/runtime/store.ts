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
import { DYNAMO_OPERATIONS, type DynamoApi } from '../store/dynamo-api';
import { DynamoJsonApi } from '../store/dynamo-json';
import { endpointFor, type AwsEndpoints, type ClientTuning } from './endpoints';

/** A {@link DynamoApi} whose idle sockets can be closed. */
export type ClosableDynamoApi = DynamoApi & { destroy(): void };

/** DynamoDB for the store: 5 attempts, jittered backoff, the invocation's deadline, whichever implementation. */
export function createDynamoApi(c: AwsEndpoints, t: ClientTuning = {}): ClosableDynamoApi {
  if (c.TALLY_AWS_CLIENT === 'sdk') return lazySdkDynamoApi(c, t);
  const { endpoint, credentials } = endpointFor('dynamodb', c);
  return new DynamoJsonApi({
    region: c.AWS_REGION,
    maxAttempts: t.maxAttempts ?? 5,
    ...(t.requestTimeoutMs !== undefined ? { requestTimeoutMs: t.requestTimeoutMs } : {}),
    ...(t.retryBaseMs !== undefined ? { retryBaseMs: t.retryBaseMs } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

/** The SDK implementation, imported on the first call. */
function lazySdkDynamoApi(c: AwsEndpoints, t: ClientTuning): ClosableDynamoApi {
  let api: Promise<ClosableDynamoApi> | undefined;
  let made: ClosableDynamoApi | undefined;
  const get = () => (api ??= import('./dynamo-sdk').then((m) => (made = m.createSdkDynamoApi(c, t))));
  const out: Record<string, unknown> = { destroy: () => made?.destroy() };
  for (const op of Object.keys(DYNAMO_OPERATIONS) as (keyof typeof DYNAMO_OPERATIONS)[]) {
    out[op] = async (input: never) => ((await get())[op] as (i: never) => Promise<unknown>)(input);
  }
  return out as unknown as ClosableDynamoApi;
}

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
