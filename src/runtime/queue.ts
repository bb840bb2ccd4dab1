/**
 * The queue ingest writes to, built from validated config. `TALLY_AWS_CLIENT` picks the implementation
 * of {@link EventQueue}: `json` (default) is SendMessageBatch in SQS's JSON protocol over keep-alive HTTP,
 * signed by node:crypto (src/queue/sqs-json.ts), about a third of the SDK client's CPU per request
 * (docs/PERFORMANCE.md); `sdk` is the AWS SDK v3 client (src/queue/sqs-sdk.ts), loaded by a dynamic import
 * only when chosen, so the default build never loads it. Both go through the same send loop.
 */
import type { QueuedEvent } from '../types';
import { SqsJsonQueue } from '../queue/sqs-json';
import type { EventQueue, SendResult } from '../queue/types';
import { endpointFor, type AwsEndpoints, type ClientTuning } from './endpoints';

export type QueueConfig = AwsEndpoints & { TALLY_QUEUE_URL: string; TALLY_MAX_MESSAGE_BYTES?: number };

/** An {@link EventQueue} whose idle sockets can be closed. */
export type ClosableQueue = EventQueue & { destroy(): void };

export function createEventQueue(c: QueueConfig, t: ClientTuning = {}): ClosableQueue {
  if (c.TALLY_AWS_CLIENT === 'sdk') return lazySdkQueue(c, t);
  const { endpoint, credentials } = endpointFor('sqs', c);
  return new SqsJsonQueue({
    queueUrl: c.TALLY_QUEUE_URL,
    region: c.AWS_REGION,
    ...(c.TALLY_MAX_MESSAGE_BYTES !== undefined ? { maxMessageBytes: c.TALLY_MAX_MESSAGE_BYTES } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    ...(t.maxAttempts !== undefined ? { maxAttempts: t.maxAttempts } : {}),
    ...(t.requestTimeoutMs !== undefined ? { requestTimeoutMs: t.requestTimeoutMs } : {}),
    ...(t.retryBaseMs !== undefined ? { retryBaseMs: t.retryBaseMs, entryRetryBaseMs: t.retryBaseMs } : {}),
  });
}

/** The SDK queue, imported on first use. */
function lazySdkQueue(c: QueueConfig, t: ClientTuning): ClosableQueue {
  let queue: Promise<ClosableQueue> | undefined;
  let made: ClosableQueue | undefined;
  const get = () => (queue ??= import('./sqs-sdk').then((m) => (made = m.createSdkEventQueue(c, t))));
  return {
    send: async (events: QueuedEvent[]): Promise<SendResult> => (await get()).send(events),
    destroy: () => made?.destroy(),
  };
}
