/**
 * The AWS SDK v3 half of the queue builder (`TALLY_AWS_CLIENT=sdk`): reached only through the dynamic
 * import in ./queue.ts, so a function built with the default `json` clients never loads the SDK's SQS
 * client (the Lambda build splits it into its own chunk).
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsSdkQueue } from '../queue/sqs-sdk';
import { endpointFor, type AwsEndpoints, type ClientTuning } from './endpoints';

/** The SDK's SQS client for the config: 3 attempts, the same per-attempt timeout as the JSON client. */
export function createSqsClient(c: AwsEndpoints, t: ClientTuning = {}): SQSClient {
  const { endpoint, credentials } = endpointFor('sqs', c);
  return new SQSClient({
    region: c.AWS_REGION,
    maxAttempts: t.maxAttempts ?? 3,
    requestHandler: { requestTimeout: t.requestTimeoutMs ?? 3000, connectionTimeout: t.requestTimeoutMs ?? 3000 },
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

/** {@link SqsSdkQueue} with its own client; `destroy()` closes the client's sockets. */
export function createSdkEventQueue(c: AwsEndpoints & { TALLY_QUEUE_URL: string; TALLY_MAX_MESSAGE_BYTES?: number }, t: ClientTuning = {}): SqsSdkQueue & { destroy(): void } {
  const client = createSqsClient(c, t);
  const queue = new SqsSdkQueue(client, {
    queueUrl: c.TALLY_QUEUE_URL,
    ...(c.TALLY_MAX_MESSAGE_BYTES !== undefined ? { maxMessageBytes: c.TALLY_MAX_MESSAGE_BYTES } : {}),
    ...(t.retryBaseMs !== undefined ? { entryRetryBaseMs: t.retryBaseMs } : {}),
  });
  return Object.assign(queue, { destroy: () => client.destroy() });
}
