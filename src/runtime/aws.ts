/**
 * The AWS SDK clients and the DynamoDB store, built from validated config. Lambda entry points and the
 * local stack both use these builders, so they cannot drift apart.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { AggregatorConfig } from '../config';
import { DynamoUsageStore } from '../store/dynamo';
import { localCredentials, type AwsEndpoints } from './endpoints';

export function createSqsClient(c: AwsEndpoints): SQSClient {
  return new SQSClient({
    region: c.AWS_REGION,
    maxAttempts: 3,
    ...(c.TALLY_SQS_ENDPOINT ? { endpoint: c.TALLY_SQS_ENDPOINT, credentials: localCredentials } : {}),
  });
}

export function createDynamoClient(c: AwsEndpoints): DynamoDBClient {
  return new DynamoDBClient({
    region: c.AWS_REGION,
    maxAttempts: 5,
    ...(c.TALLY_DYNAMODB_ENDPOINT ? { endpoint: c.TALLY_DYNAMODB_ENDPOINT, credentials: localCredentials } : {}),
  });
}

export function createStore(c: AggregatorConfig | (AwsEndpoints & { TALLY_TABLE_NAME: string }), db = createDynamoClient(c)): DynamoUsageStore {
  const a = c as Partial<AggregatorConfig>;
  return new DynamoUsageStore(db, {
    tableName: c.TALLY_TABLE_NAME,
    ...(a.TALLY_DYNAMODB_CONCURRENCY !== undefined ? { concurrency: a.TALLY_DYNAMODB_CONCURRENCY } : {}),
    ...(a.TALLY_MINUTE_TTL_DAYS !== undefined ? { minuteTtlDays: a.TALLY_MINUTE_TTL_DAYS } : {}),
    ...(a.TALLY_DEDUPE_TTL_DAYS !== undefined ? { dedupeTtlDays: a.TALLY_DEDUPE_TTL_DAYS } : {}),
  });
}
