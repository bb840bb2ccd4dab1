/**
 * {@link EventQueue} over SQS's JSON protocol, lighter than {@link SqsSdkQueue}: the same SendMessageBatch calls, written
 * directly in SQS's JSON protocol (`X-Amz-Target: AmazonSQS.SendMessageBatch`) through
 * src/aws/json-client.ts (a keep-alive `node:http(s)` agent, SigV4 by `node:crypto`). No AWS SDK on the request path: the
 * SDK v3 spends ~480 µs of CPU per call in its middleware stack, serde and signer; this spends a
 * fraction of that (see docs/PERFORMANCE.md). No dependency beyond Node.
 *
 * Failure semantics are those of sqs-sdk.ts: entries SQS reports as failed are retried (`entryRetries`
 * rounds); a sender fault, a non-retryable error, or retries used up reject with
 * {@link QueueUnavailableError} (503), so a client never gets a 2xx for an event that is not queued.
 * Whole calls that fail with a network error, a timeout, a 5xx or a throttling error are retried
 * (`maxAttempts` in all, with jittered backoff), as the SDK client of src/runtime/aws.ts does.
 */
import { AwsCallError, AwsJsonClient } from '../aws/json-client';
import { envCredentials, SigV4, type AwsCredentials } from '../aws/sigv4';
import { QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { sendPacked, type PackedMessage } from './pack';
import type { EventQueue, SendResult } from './types';

export interface SqsJsonQueueOptions {
  queueUrl: string;
  region: string;
  /** SQS endpoint; default `https://sqs.<region>.amazonaws.com`. */
  endpoint?: string;
  /** Default: read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (as Lambda sets them) on each call. */
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** Largest message body (SQS: 1 MiB). */
  maxMessageBytes: number;
  /** Rounds of retry for entries SQS reports as failed. */
  entryRetries: number;
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
  maxAttempts: 3,
  requestTimeoutMs: 3000,
  retryBaseMs: 25,
  maxSockets: 64,
} as const;

interface BatchResponse {
  Successful?: { Id: string }[];
  Failed?: { Id: string; SenderFault?: boolean; Code?: string; Message?: string }[];
}

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

  /** One SendMessageBatch (with whole-call retries); returns the entries that failed and may succeed on retry. */
  private async sendBatch(entries: PackedMessage[]): Promise<PackedMessage[]> {
    const body = JSON.stringify({ QueueUrl: this.o.queueUrl, Entries: entries.map((m, i) => ({ Id: String(i), MessageBody: m.body })) });
    let res: BatchResponse;
    try {
      res = await this.client.callWithRetries<BatchResponse>('AmazonSQS.SendMessageBatch', body);
    } catch (err) {
      const code = err instanceof AwsCallError ? err.code : String(err);
      throw new QueueUnavailableError(`queue unavailable (${code}); nothing was accepted, retry`);
    }
    const failed = res.Failed ?? [];
    const sender = failed.find((f) => f.SenderFault);
    if (sender) throw new QueueUnavailableError(`queue rejected a message: ${sender.Code ?? 'error'}; nothing in it was accepted`);
    const retry = new Set(failed.map((f) => Number(f.Id)));
    // An entry SQS reports neither way is not known to be queued: send it again.
    if (res.Successful) {
      const ok = new Set(res.Successful.map((s) => Number(s.Id)));
      entries.forEach((_, i) => {
        if (!ok.has(i)) retry.add(i);
      });
    }
    return [...retry].sort((a, b) => a - b).map((i) => entries[i]!);
  }
}
