/**
 * The DynamoDB store built from validated config, over the SDK-free DynamoDB client
 * (src/store/dynamo-json.ts). Lambda entry points and the local stack both use these builders.
 */
import type { AggregatorConfig } from '../config';
import { DynamoUsageStore } from '../store/dynamo';
import type { DynamoApi } from '../store/dynamo-api';
import { DynamoJsonApi } from '../store/dynamo-json';
import { localCredentials, type AwsEndpoints } from './endpoints';

/** DynamoDB for the store: the JSON protocol signed by node:crypto, 5 attempts like the SDK client above. */
export function createDynamoApi(c: AwsEndpoints): DynamoJsonApi {
  return new DynamoJsonApi({
    region: c.AWS_REGION,
    maxAttempts: 5,
    ...(c.TALLY_DYNAMODB_ENDPOINT ? { endpoint: c.TALLY_DYNAMODB_ENDPOINT, credentials: localCredentials } : {}),
  });
}

export function createStore(c: AggregatorConfig | (AwsEndpoints & { TALLY_TABLE_NAME: string }), db: DynamoApi = createDynamoApi(c)): DynamoUsageStore {
  const a = c as Partial<AggregatorConfig>;
  return new DynamoUsageStore(db, {
    tableName: c.TALLY_TABLE_NAME,
    ...(a.TALLY_DYNAMODB_CONCURRENCY !== undefined ? { concurrency: a.TALLY_DYNAMODB_CONCURRENCY } : {}),
    ...(a.TALLY_MINUTE_TTL_DAYS !== undefined ? { minuteTtlDays: a.TALLY_MINUTE_TTL_DAYS } : {}),
    ...(a.TALLY_DEDUPE_TTL_DAYS !== undefined ? { dedupeTtlDays: a.TALLY_DEDUPE_TTL_DAYS } : {}),
  });
}
