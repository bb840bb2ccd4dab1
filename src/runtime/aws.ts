/**
 * The AWS SDK v3 clients, built from validated config: the local stack's setup and SQS poller, and the
 * benchmark's reference. No Lambda function imports this file: the functions reach the SDK only through
 * the dynamic imports of src/runtime/queue.ts and src/runtime/store.ts, when `TALLY_AWS_CLIENT=sdk`.
 */
export { createSqsClient } from './sqs-sdk';
export { createDynamoClient } from './dynamo-sdk';
