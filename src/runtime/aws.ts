/**
 * The AWS SDK v3 clients, built from validated config: the local stack's setup and SQS poller, and the
 * benchmark's reference. No Lambda function imports this file (the store and ingest's queue use the
 * SDK-free clients of src/runtime/store.ts and src/runtime/queue.ts), so none bundles the SDK clients.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
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
