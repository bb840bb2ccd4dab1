/**
 * Builds the real dependencies (AWS clients, PostHog sink) from validated config. Lambda entry points
 * and the local stack both use it, so they cannot drift apart.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { AggregatorConfig } from './config';
import { FastSqsEventQueue } from './queue/sqs-fast';
import { PostHogNodeSink } from './sink/posthog';
import type { PostHogSink } from './sink/types';
import { DynamoUsageStore } from './store/dynamo';

interface AwsEndpoints {
  AWS_REGION: string;
  TALLY_SQS_ENDPOINT?: string;
  TALLY_DYNAMODB_ENDPOINT?: string;
}

/** Local endpoints take any credentials; in AWS the default provider chain applies. */
const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

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

/** What the aggregator and the outbox share in AWS: the store, the PostHog sink (required) and the stale period. */
export function createAggregatorCore(c: AggregatorConfig): { store: DynamoUsageStore; sink: PostHogSink; staleMs: number; concurrency: number } {
  const sink = createPostHogSink(c);
  if (!sink) throw new Error('POSTHOG_API_KEY (or POSTHOG_API_KEY_SECRET_ARN) is required in AWS');
  return { store: createStore(c), sink, staleMs: c.TALLY_CLAIM_STALE_SECONDS * 1000, concurrency: c.TALLY_DYNAMODB_CONCURRENCY };
}

/**
 * The queue ingest writes to: SendMessageBatch in SQS's JSON protocol over keep-alive HTTP, signed by
 * node:crypto (src/queue/sqs-fast.ts) — a quarter of the SDK client's CPU per request (docs/PERFORMANCE.md).
 * In Lambda the credentials come from the environment; a local endpoint takes any.
 */
export function createEventQueue(c: AwsEndpoints & { TALLY_QUEUE_URL: string; TALLY_MAX_MESSAGE_BYTES?: number }): FastSqsEventQueue {
  return new FastSqsEventQueue({
    queueUrl: c.TALLY_QUEUE_URL,
    region: c.AWS_REGION,
    ...(c.TALLY_MAX_MESSAGE_BYTES !== undefined ? { maxMessageBytes: c.TALLY_MAX_MESSAGE_BYTES } : {}),
    ...(c.TALLY_SQS_ENDPOINT ? { endpoint: c.TALLY_SQS_ENDPOINT, credentials: localCredentials } : {}),
  });
}
