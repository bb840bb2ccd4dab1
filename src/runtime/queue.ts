/** The queue ingest writes to, built from validated config: no AWS SDK and no posthog-node in its imports. */
import { SqsJsonQueue } from '../queue/sqs-json';
import { localCredentials, type AwsEndpoints } from './endpoints';

/**
 * The queue ingest writes to: SendMessageBatch in SQS's JSON protocol over keep-alive HTTP, signed by
 * node:crypto (src/queue/sqs-json.ts) — a quarter of the SDK client's CPU per request (docs/PERFORMANCE.md).
 * In Lambda the credentials come from the environment; a local endpoint takes any.
 */
export function createEventQueue(c: AwsEndpoints & { TALLY_QUEUE_URL: string; TALLY_MAX_MESSAGE_BYTES?: number }): SqsJsonQueue {
  return new SqsJsonQueue({
    queueUrl: c.TALLY_QUEUE_URL,
    region: c.AWS_REGION,
    ...(c.TALLY_MAX_MESSAGE_BYTES !== undefined ? { maxMessageBytes: c.TALLY_MAX_MESSAGE_BYTES } : {}),
    ...(c.TALLY_SQS_ENDPOINT ? { endpoint: c.TALLY_SQS_ENDPOINT, credentials: localCredentials } : {}),
  });
}
