/**
 * {@link EventQueue} over the AWS SDK v3 SQS client (`TALLY_AWS_CLIENT=sdk`; the default is
 * {@link SqsJsonQueue}): SendMessageBatch with as few calls as the limits allow, every call in parallel,
 * through the one send loop of src/queue/pack.ts, so both implementations fail the same way. Whole calls
 * are retried by the SDK (its standard strategy), bounded by the invocation's deadline.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { sdkSendOptions } from '../aws/sdk-deadline';
import { QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { entryFailures, sendPacked, type EntryFailure, type PackedMessage } from './pack';
import type { EventQueue, SendResult } from './types';

export interface SqsSdkQueueOptions {
  queueUrl: string;
  /** Largest message body (SQS: 1 MiB). */
  maxMessageBytes: number;
  /** Rounds of retry for entries SQS reports as failed (the SDK already retries whole calls). */
  entryRetries: number;
  /** First backoff before resending failed entries; doubled each round, with full jitter. */
  entryRetryBaseMs: number;
}

export const sqsSdkQueueDefaults = { maxMessageBytes: 1024 * 1024, entryRetries: 2, entryRetryBaseMs: 25 } as const;

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

  /** One SendMessageBatch; returns the entries SQS did not take. */
  private async sendBatch(entries: PackedMessage[]): Promise<EntryFailure[]> {
    let res;
    try {
      res = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.opts.queueUrl,
          Entries: entries.map((m, i) => ({ Id: String(i), MessageBody: m.body })),
        }),
        sdkSendOptions(),
      );
    } catch (err) {
      throw new QueueUnavailableError(`queue unavailable (${(err as Error).name}); nothing was accepted, retry`);
    }
    return entryFailures(entries, res);
  }
}
