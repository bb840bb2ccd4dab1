/**
 * {@link EventQueue} over SQS's JSON protocol without the AWS SDK (`TALLY_AWS_CLIENT=json`, the default):
 * the same SendMessageBatch calls as {@link SqsSdkQueue}, written directly (`X-Amz-Target:
 * AmazonSQS.SendMessageBatch`) through src/aws/json-client.ts (keep-alive agent, SigV4 by `node:crypto`,
 * retry budget, clock-skew correction, the invocation's deadline). The SDK v3 spends ~480 µs of CPU per
 * call in its middleware stack, serde and signer; this a fraction of that (docs/PERFORMANCE.md).
 *
 * Failure semantics are those of the one send loop both share (src/queue/pack.ts): entries SQS reports as
 * failed are sent again after a backoff (`entryRetries` rounds); a sender fault is a 400; retries used up,
 * a non-retryable error or no time left is a 503, so a client never gets a 2xx for an event that is not
 * queued. Whole calls that fail with a network error, a timeout, a 5xx or a throttling error are retried
 * (`maxAttempts` in all, jittered backoff) by the transport.
 */
import { AwsCallError, AwsJsonClient } from '../aws/json-client';
import { envCredentials, SigV4, type AwsCredentials } from '../aws/sigv4';
import { QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { DeadlineExceededError } from '../util/deadline';
import { entryFailures, sendPacked, type BatchAnswer, type EntryFailure, type PackedMessage } from './pack';
import type { EventQueue, SendResult } from './types';

export interface SqsJsonQueueOptions {
  queueUrl: string;
  region: string;
  /** SQS endpoint; default the partition's (`https://sqs.<region>.amazonaws.com/`, `.com.cn` in China). */
  endpoint?: string;
  /** Default: read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (as Lambda sets them) on each call. */
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** Largest message body (SQS: 1 MiB). */
  maxMessageBytes: number;
  /** Rounds of retry for entries SQS reports as failed. */
  entryRetries: number;
  /** First backoff before resending failed entries; doubled each round, with full jitter. */
  entryRetryBaseMs: number;
  /** Attempts per call for network errors, timeouts, 5xx and throttling. */
  maxAttempts: number;
  /** Per attempt. */
  requestTimeoutMs: number;
  /** First backoff; doubled each attempt, with full jitter. */
  retryBaseMs: number;
  /** Keep-alive sockets per host. */
  maxSockets: number;
}

export { envCredentials, SigV4, type AwsCredentials };

export const sqsJsonQueueDefaults = {
  maxMessageBytes: 1024 * 1024,
  entryRetries: 2,
  entryRetryBaseMs: 25,
  maxAttempts: 3,
  requestTimeoutMs: 3000,
  retryBaseMs: 25,
  maxSockets: 64,
} as const;

export class SqsJsonQueue implements EventQueue {
  private readonly o: SqsJsonQueueOptions;
  private readonly client: AwsJsonClient;

  constructor(opts: Partial<SqsJsonQueueOptions> & { queueUrl: string; region: string }) {
    this.o = { ...sqsJsonQueueDefaults, ...opts };
    this.client = new AwsJsonClient({
      service: 'sqs',
      region: this.o.region,
      endpoint: this.o.endpoint,
      credentials: this.o.credentials,
      requestTimeoutMs: this.o.requestTimeoutMs,
      maxAttempts: this.o.maxAttempts,
      retryBaseMs: this.o.retryBaseMs,
      maxSockets: this.o.maxSockets,
    });
  }

  send(events: QueuedEvent[]): Promise<SendResult> {
    return sendPacked(events, this.o, (entries) => this.sendBatch(entries));
  }

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    this.client.destroy();
  }

  /** One SendMessageBatch (with whole-call retries); returns the entries SQS did not take. */
  private async sendBatch(entries: PackedMessage[]): Promise<EntryFailure[]> {
    const body = JSON.stringify({ QueueUrl: this.o.queueUrl, Entries: entries.map((m, i) => ({ Id: String(i), MessageBody: m.body })) });
    let res: BatchAnswer;
    try {
      res = await this.client.callWithRetries<BatchAnswer>('AmazonSQS.SendMessageBatch', body);
    } catch (err) {
      const code = err instanceof AwsCallError || err instanceof DeadlineExceededError ? err.name : String(err);
      throw new QueueUnavailableError(`queue unavailable (${code}); nothing was accepted, retry`);
    }
    return entryFailures(entries, res);
  }
}
