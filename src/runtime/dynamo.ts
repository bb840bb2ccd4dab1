/**
 * The {@link DynamoApi} built from validated config, apart from the store (./store.ts) so that a function
 * which only looks keys up (ingest) does not load the counters' store at cold start. `TALLY_AWS_CLIENT`
 * picks the implementation: `json` (default, src/store/dynamo-json.ts) or `sdk` (src/store/dynamo-sdk.ts,
 * loaded by a dynamic import only when chosen).
 */
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
