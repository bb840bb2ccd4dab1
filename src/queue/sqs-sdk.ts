/**
 * The SQS implementation of {@link EventQueue}: SendMessageBatch with as few calls as the limits
 * allow, every call in parallel. Entries SQS reports as failed are retried; if any remain, `send`
 * rejects with a 503, so the client never gets a 2xx for an event that is not queued.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { sendPacked, type PackedMessage } from './pack';
import type { EventQueue, SendResult } from './types';

export interface SqsSdkQueueOptions {
  queueUrl: string;
  /** Largest message body (SQS: 1 MiB). */
  maxMessageBytes: number;
  /** Rounds of retry for entries SQS reports as failed (the SDK already retries whole calls). */
  entryRetries: number;
}

export const sqsSdkQueueDefaults = { maxMessageBytes: 1024 * 1024, entryRetries: 2 } as const;

export class SqsSdkQueue implements EventQueue {
  private readonly opts: SqsSdkQueueOptions;

  constructor(
    private readonly client: SQSClient,
    opts: Partial<SqsSdkQueueOptions> & { queueUrl: string },
  ) {
    this.opts = { ...sqsSdkQueueDefaults, ...opts };
  }

  send(events: QueuedEvent[]): Promise<SendResult> {
    return sendPacked(events, this.opts, (entries) => this.sendBatch(entries));
  }

  /** One SendMessageBatch; returns the entries that failed and may succeed on retry. */
  private async sendBatch(entries: PackedMessage[]): Promise<PackedMessage[]> {
    let res;
    try {
      res = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.opts.queueUrl,
          Entries: entries.map((m, i) => ({ Id: String(i), MessageBody: m.body })),
        }),
      );
    } catch (err) {
      throw new QueueUnavailableError(`queue unavailable (${(err as Error).name}); nothing was accepted, retry`);
    }
    const failed = res.Failed ?? [];
    if (failed.length === 0) return [];
    const sender = failed.find((f) => f.SenderFault);
    if (sender) throw new QueueUnavailableError(`queue rejected a message: ${sender.Code ?? 'error'}; nothing in it was accepted`);
    return failed.map((f) => entries[Number(f.Id)]!);
  }
}
