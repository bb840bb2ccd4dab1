/**
 * A local stand-in for Lambda's SQS event source mapping: long-polls a queue, gathers batches
 * (batch size, batching window, 6 MB payload), invokes the handler with an `SQSEvent` shaped exactly like
 * Lambda's, and deletes what the handler did not report in `batchItemFailures` (ReportBatchItemFailures on).
 * Unreported failures stay in the queue, reappear after the visibility timeout, and the queue's
 * redrive policy moves them to the dead-letter queue after `maxReceiveCount` receives.
 *
 * It speaks to SQS through tally's JSON-protocol client (src/aws/json-client.ts) by default: the AWS
 * SDK v3 client (`sqs`, or `client: 'sdk'`) costs the local stack's main thread, which also runs the
 * front, ingest and the aggregator, ~13 % of its CPU under load (receives and deletes by 10 messages).
 */
import { randomUUID } from 'node:crypto';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AwsJsonClient } from '../src/aws/json-client';
import { localAwsClientConfig } from './emulators';

/** The Lambda handler the poller invokes (an `SQSHandler` returning a promise). */
export type SqsBatchHandler = (
  event: SQSEvent,
  context: Context,
) => Promise<SQSBatchResponse | void | undefined | null> | SQSBatchResponse | void | undefined | null;

/** Why the poller calls `onError`. */
export type PollerErrorKind = 'handler' | 'timeout' | 'response' | 'receive' | 'delete';

/** Options of {@link SqsPoller}. */
export interface PollerOptions {
  /** URL of the queue to consume. With fauxqs, any URL whose last path segment is the queue name works. */
  queueUrl: string;
  handler: SqsBatchHandler;
  /** An AWS SDK client to use; when omitted a client is made from `endpoint` and `region` with local credentials. */
  sqs?: SQSClient;
  endpoint?: string;
  /** The client made from `endpoint`: tally's JSON-protocol client (default) or the AWS SDK's. */
  client?: 'json' | 'sdk';
  /** `awsRegion` of the records and region of the client made here; default: the queue ARN's, else us-east-1. */
  region?: string;
  /** `eventSourceARN` of the records; read from the queue's `QueueArn` attribute when omitted. */
  queueArn?: string;
  /** Most records per invocation (Lambda allows up to 10,000 for standard queues). */
  batchSize?: number;
  /** Longest wait, from the first message of a batch, for the batch to fill. */
  maximumBatchingWindowMs?: number;
  /** Batches processed at once (Lambda runs several concurrent pollers/invocations). */
  concurrency?: number;
  /** Long-poll wait of each ReceiveMessage (0–20); short so that `stop()` returns quickly. */
  waitTimeSeconds?: number;
  /** The function's timeout: feeds `getRemainingTimeInMillis`; an invocation running longer counts as failed. */
  timeoutMs?: number;
  functionName?: string;
  memoryLimitInMB?: number;
  /** Told about every failed invocation, malformed response, and SQS error. */
  onError?: (err: unknown, kind: PollerErrorKind) => void;
}

export const pollerDefaults = {
  batchSize: 100,
  maximumBatchingWindowMs: 1000,
  concurrency: 2,
  waitTimeSeconds: 1,
  timeoutMs: 60_000,
  functionName: 'aggregator',
  memoryLimitInMB: 1024,
  onError: (err: unknown, kind: PollerErrorKind) => console.error(`[poller] ${kind} error:`, err),
} satisfies Partial<PollerOptions>;

/** Lambda's limit on a synchronous invocation payload; a batch is cut before it would exceed this. */
export const MAX_INVOCATION_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** Rough JSON size of a record without its body and attributes (ids, receipt handle, ARN, keys). */
const RECORD_OVERHEAD_BYTES = 1024;

/** Counters, updated as the poller works. */
export interface PollerStats {
  /** Handler invocations. */
  batches: number;
  /** Records handed to the handler (a redelivered message counts each time). */
  messages: number;
  /** Messages deleted after a successful or partially failed invocation. */
  deleted: number;
  /** Records not deleted: reported in batchItemFailures, or part of a failed invocation. */
  failed: number;
  /** Invocations that threw, timed out, or returned a response Lambda would reject. */
  errors: number;
  /** ReceiveMessage / DeleteMessageBatch calls that failed. */
  sqsErrors: number;
  /** Invocations running now. */
  inFlight: number;
  /** Messages received and not yet settled: in a gathering batch, in an invocation, or being deleted. */
  held: number;
}

/** Options of {@link createLambdaContext}. */
export interface ContextOptions {
  functionName?: string;
  timeoutMs?: number;
  region?: string;
  memoryLimitInMB?: number;
}

/** A Lambda `Context` for one invocation; `getRemainingTimeInMillis` counts down from `timeoutMs`. */
export function createLambdaContext(opts: ContextOptions = {}): Context {
  const functionName = opts.functionName ?? pollerDefaults.functionName;
  const region = opts.region ?? 'us-east-1';
  const deadline = Date.now() + (opts.timeoutMs ?? pollerDefaults.timeoutMs);
  const awsRequestId = randomUUID();
  const unsupported = () => {
    throw new Error('callback-style context methods are not supported; return a promise');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: String(opts.memoryLimitInMB ?? pollerDefaults.memoryLimitInMB),
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${awsRequestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

const base64 = (v: Uint8Array | string): string => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

function toLambdaAttributes(attrs: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  if (!attrs) return out;
  for (const name in attrs) {
    const a = attrs[name];
    out[name] = {
      ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
      // The SDK gives binary values as bytes; SQS's JSON protocol as base64 already.
      ...(a.BinaryValue !== undefined ? { binaryValue: base64(a.BinaryValue) } : {}),
      stringListValues: a.StringListValues ?? [],
      binaryListValues: (a.BinaryListValues ?? []).map(base64),
      dataType: a.DataType ?? 'String',
    };
  }
  return out;
}

/** One received SQS message as the record Lambda would pass. */
export function toSqsRecord(m: Message, eventSourceARN: string, awsRegion: string): SQSRecord {
  const a = m.Attributes ?? {};
  const record: SQSRecord = {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ...a,
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? '000000000000',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: toLambdaAttributes(m.MessageAttributes),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion,
  };
  if (m.MD5OfMessageAttributes !== undefined) record.md5OfMessageAttributes = m.MD5OfMessageAttributes;
  return record;
}

/**
 * Reads a handler's response as Lambda does with ReportBatchItemFailures: the ids to keep, or
 * `undefined` when the whole batch failed (a response Lambda rejects: not an object, a non-array
 * `batchItemFailures`, an entry without a non-empty `itemIdentifier`, or an id not in the batch).
 * `null`/`undefined`, `{}` and an empty or null list mean complete success.
 */
export function failedIds(response: unknown, batchIds: ReadonlySet<string>): Set<string> | undefined {
  if (response === undefined || response === null) return new Set();
  if (typeof response !== 'object' || Array.isArray(response)) return undefined;
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return new Set();
  if (!Array.isArray(list)) return undefined;
  const out = new Set<string>();
  for (const f of list) {
    const id = typeof f === 'object' && f !== null ? (f as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    if (typeof id !== 'string' || id === '' || !batchIds.has(id)) return undefined;
    out.add(id);
  }
  return out;
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`invocation exceeded the ${ms} ms timeout`);
    this.name = 'TimeoutError';
  }
}

/** The SQS calls the poller makes, as the event source mapping makes them. */
interface PollerSqs {
  receive(queueUrl: string, max: number, waitSeconds: number): Promise<Message[]>;
  /** Deletes by receipt handle; resolves with how many were deleted and the failed entries. */
  deleteBatch(queueUrl: string, receiptHandles: string[]): Promise<{ deleted: number; failed: unknown[] }>;
  attributes(queueUrl: string, names: string[]): Promise<Record<string, string>>;
  destroy(): void;
}

function sdkSqs(sqs: SQSClient): PollerSqs {
  return {
    async receive(QueueUrl, max, WaitTimeSeconds) {
      const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: max, WaitTimeSeconds, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }));
      return r.Messages ?? [];
    },
    async deleteBatch(QueueUrl, handles) {
      const r = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: handles.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })) }));
      return { deleted: r.Successful?.length ?? 0, failed: r.Failed ?? [] };
    },
    async attributes(QueueUrl, names) {
      const r = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: names as never }));
      return (r.Attributes ?? {}) as Record<string, string>;
    },
    destroy: () => sqs.destroy(),
  };
}

/** The same calls in SQS's JSON protocol; a long poll's attempt is bounded by its wait plus 5 s. */
function jsonSqs(endpoint: string, region: string): PollerSqs {
  const c = new AwsJsonClient({ service: 'sqs', region, endpoint, credentials: localAwsClientConfig(endpoint, region).credentials, maxSockets: 16 });
  return {
    async receive(QueueUrl, max, WaitTimeSeconds) {
      const body = JSON.stringify({ QueueUrl, MaxNumberOfMessages: max, WaitTimeSeconds, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] });
      const r = await c.call<{ Messages?: Message[] }>('AmazonSQS.ReceiveMessage', body, undefined, (WaitTimeSeconds + 5) * 1000);
      return r.Messages ?? [];
    },
    async deleteBatch(QueueUrl, handles) {
      const body = JSON.stringify({ QueueUrl, Entries: handles.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })) });
      const r = await c.call<{ Successful?: unknown[]; Failed?: unknown[] }>('AmazonSQS.DeleteMessageBatch', body);
      return { deleted: r.Successful?.length ?? 0, failed: r.Failed ?? [] };
    },
    async attributes(QueueUrl, AttributeNames) {
      const r = await c.call<{ Attributes?: Record<string, string> }>('AmazonSQS.GetQueueAttributes', JSON.stringify({ QueueUrl, AttributeNames }));
      return r.Attributes ?? {};
    },
    destroy: () => c.destroy(),
  };
}

/**
 * Polls one queue and invokes a handler like Lambda's SQS event source mapping.
 *
 * @example
 * const poller = new SqsPoller({ queueUrl, endpoint: sqs.endpoint, handler: aggregator.handler });
 * await poller.start();
 * await poller.drain(10_000); // queue empty, nothing in flight
 * await poller.stop();
 */
export class SqsPoller {
  /** Counters since construction. */
  readonly stats: PollerStats = { batches: 0, messages: 0, deleted: 0, failed: 0, errors: 0, sqsErrors: 0, inFlight: 0, held: 0 };
  private readonly o: typeof pollerDefaults & PollerOptions;
  private sqs: PollerSqs;
  private readonly ownClient: boolean;
  private clientDestroyed = false;
  private arn = '';
  private region: string;
  private running = false;
  private workers: Promise<void>[] = [];
  private wake = new AbortController();

  constructor(opts: PollerOptions) {
    const o = { ...pollerDefaults } as typeof pollerDefaults & PollerOptions;
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 10_000) throw new RangeError('batchSize must be 1–10,000');
    if (o.batchSize > 10 && o.maximumBatchingWindowMs < 1) {
      // Lambda refuses this combination for standard queues too.
      throw new RangeError('batchSize above 10 needs maximumBatchingWindowMs of at least 1');
    }
    if (o.maximumBatchingWindowMs < 0 || o.maximumBatchingWindowMs > 300_000) throw new RangeError('maximumBatchingWindowMs must be 0–300,000');
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    if (!Number.isInteger(o.waitTimeSeconds) || o.waitTimeSeconds < 0 || o.waitTimeSeconds > 20) throw new RangeError('waitTimeSeconds must be 0–20');
    this.o = o;
    this.region = o.region ?? 'us-east-1';
    if (opts.sqs) {
      this.sqs = sdkSqs(opts.sqs);
      this.ownClient = false;
    } else {
      if (!o.endpoint) throw new Error('SqsPoller needs either `sqs` (a client) or `endpoint`');
      this.sqs = this.makeClient();
      this.ownClient = true;
    }
  }

  private makeClient(): PollerSqs {
    return this.o.client === 'sdk' ? sdkSqs(new SQSClient(localAwsClientConfig(this.o.endpoint!, this.region))) : jsonSqs(this.o.endpoint!, this.region);
  }

  /** True between `start()` and `stop()`. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Starts `concurrency` polling loops. Resolves once the queue's ARN is known and polling has begun. */
  async start(): Promise<void> {
    if (this.running) return;
    if (this.clientDestroyed) {
      this.sqs = this.makeClient();
      this.clientDestroyed = false;
    }
    if (this.o.queueArn) this.arn = this.o.queueArn;
    else this.arn = (await this.sqs.attributes(this.o.queueUrl, ['QueueArn'])).QueueArn ?? '';
    if (!this.o.region && this.arn.startsWith('arn:')) this.region = this.arn.split(':')[3] || this.region;
    this.running = true;
    this.wake = new AbortController();
    this.workers = Array.from({ length: this.o.concurrency }, () => this.loop());
  }

  /**
   * Stops polling. Waits for invocations in progress and their deletes; messages already received
   * are still handed to the handler, never dropped. Takes at most about `waitTimeSeconds` plus the
   * running invocations.
   */
  async stop(): Promise<void> {
    if (!this.running && this.workers.length === 0) return;
    this.running = false;
    this.wake.abort();
    await Promise.all(this.workers);
    this.workers = [];
    if (this.ownClient) {
      this.sqs.destroy();
      this.clientDestroyed = true;
    }
  }

  /**
   * Resolves once the queue has no visible, in-flight or delayed message and this poller holds none;
   * rejects after `timeoutMs`. A message that keeps failing counts until SQS moves it to the DLQ.
   */
  async drain(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Record<string, string> = {};
    for (;;) {
      if (this.stats.held === 0 && this.stats.inFlight === 0) {
        last = await this.sqs.attributes(this.o.queueUrl, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed']);
        const busy = Object.values(last).some((v) => Number(v) > 0);
        if (!busy && this.stats.held === 0 && this.stats.inFlight === 0) return;
      }
      if (Date.now() >= deadline) {
        throw new Error(`queue not drained after ${timeoutMs} ms: held=${this.stats.held} inFlight=${this.stats.inFlight} ${JSON.stringify(last)}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async loop(): Promise<void> {
    let carry: Message[] = [];
    while (this.running || carry.length > 0) {
      const { batch, overflow } = await this.collect(carry);
      carry = overflow;
      if (batch.length > 0) await this.invoke(batch);
    }
  }

  /** Gathers one batch; `overflow` holds messages that did not fit the payload limit. */
  private async collect(carry: Message[]): Promise<{ batch: Message[]; overflow: Message[] }> {
    const { batchSize, maximumBatchingWindowMs: windowMs, waitTimeSeconds } = this.o;
    const batch: Message[] = [];
    const overflow: Message[] = [];
    let bytes = 0;
    const add = (m: Message) => {
      const size = recordSize(m);
      if (batch.length > 0 && (bytes + size > MAX_INVOCATION_PAYLOAD_BYTES || batch.length >= batchSize)) overflow.push(m);
      else {
        batch.push(m);
        bytes += size;
      }
    };
    for (const m of carry) add(m);
    let firstAt = batch.length > 0 ? Date.now() : undefined;
    while (this.running && batch.length < batchSize && overflow.length === 0) {
      let wait = waitTimeSeconds;
      let left = Infinity;
      if (firstAt !== undefined) {
        left = windowMs - (Date.now() - firstAt);
        if (left <= 0) break;
        wait = Math.min(waitTimeSeconds, Math.floor(left / 1000));
      }
      let received: Message[];
      try {
        received = await this.sqs.receive(this.o.queueUrl, Math.min(10, batchSize - batch.length), wait);
      } catch (err) {
        this.stats.sqsErrors++;
        if (this.running) this.o.onError(err, 'receive');
        if (batch.length > 0) break;
        await this.sleep(1000);
        continue;
      }
      if (received.length === 0) {
        // Under a second of window left: short polls, a little apart.
        if (wait === 0) await this.sleep(Math.min(left, 20));
        continue;
      }
      this.stats.held += received.length;
      firstAt ??= Date.now();
      for (const m of received) add(m);
    }
    return { batch, overflow };
  }

  private async invoke(messages: Message[]): Promise<void> {
    const { handler, timeoutMs } = this.o;
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, this.arn, this.region)) };
    const ids = new Set(event.Records.map((r) => r.messageId));
    const context = createLambdaContext({
      functionName: this.o.functionName,
      timeoutMs,
      region: this.region,
      memoryLimitInMB: this.o.memoryLimitInMB,
    });
    this.stats.batches++;
    this.stats.messages += messages.length;
    this.stats.inFlight++;
    let keep: Set<string> | undefined;
    try {
      const run = Promise.resolve().then(() => handler(event, context));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs);
      });
      let response: unknown;
      try {
        response = await Promise.race([run, timedOut]);
      } catch (err) {
        if (err instanceof TimeoutError) {
          this.o.onError(err, 'timeout');
          // Lambda would kill the function; here it can only be waited for, never abandoned.
          await run.catch(() => undefined);
        } else this.o.onError(err, 'handler');
        throw err;
      } finally {
        clearTimeout(timer);
      }
      keep = failedIds(response, ids);
      if (keep === undefined) {
        this.o.onError(new Error(`invalid batch response: ${safeJson(response)}`), 'response');
      }
    } catch {
      keep = undefined;
    }
    try {
      if (keep === undefined) {
        this.stats.errors++;
        this.stats.failed += messages.length;
      } else {
        const failed = keep;
        const done = messages.filter((m) => !failed.has(m.MessageId!));
        this.stats.failed += messages.length - done.length;
        await this.deleteAll(done);
      }
    } finally {
      this.stats.held -= messages.length;
      this.stats.inFlight--;
    }
  }

  private async deleteAll(messages: Message[]): Promise<void> {
    const chunks: Message[][] = [];
    for (let i = 0; i < messages.length; i += 10) chunks.push(messages.slice(i, i + 10));
    await Promise.all(
      chunks.map(async (chunk) => {
        try {
          const r = await this.sqs.deleteBatch(this.o.queueUrl, chunk.map((m) => m.ReceiptHandle!));
          this.stats.deleted += r.deleted;
          if (r.failed.length > 0) {
            this.stats.sqsErrors++;
            this.o.onError(new Error(`DeleteMessageBatch failed for ${safeJson(r.failed)}`), 'delete');
          }
        } catch (err) {
          this.stats.sqsErrors++;
          this.o.onError(err, 'delete');
        }
      }),
    );
  }

  /** Waits `ms`, or less if `stop()` is called. */
  private sleep(ms: number): Promise<void> {
    const signal = this.wake.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function recordSize(m: Message): number {
  let n = RECORD_OVERHEAD_BYTES + Buffer.byteLength(m.Body ?? '');
  if (m.MessageAttributes) n += Buffer.byteLength(JSON.stringify(m.MessageAttributes));
  return n;
}

function safeJson(v: unknown): string {
  try {
    return String(JSON.stringify(v)).slice(0, 300);
  } catch {
    return String(v);
  }
}

/** Shorthand for `new SqsPoller(opts)`. */
export function createPoller(opts: PollerOptions): SqsPoller {
  return new SqsPoller(opts);
}
