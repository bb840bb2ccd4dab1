/**
 * A lighter {@link EventQueue} than {@link SqsEventQueue}: the same SendMessageBatch calls, written
 * directly in SQS's JSON protocol (`X-Amz-Target: AmazonSQS.SendMessageBatch`) over a keep-alive
 * `node:http(s)` agent and signed with SigV4 by `node:crypto`. No AWS SDK on the request path: the
 * SDK v3 spends ~480 µs of CPU per call in its middleware stack, serde and signer; this spends a
 * fraction of that (see docs/PERFORMANCE.md). No dependency beyond Node.
 *
 * Failure semantics are those of sqs.ts: entries SQS reports as failed are retried (`entryRetries`
 * rounds); a sender fault, a non-retryable error, or retries used up reject with
 * {@link QueueUnavailableError} (503), so a client never gets a 2xx for an event that is not queued.
 * Whole calls that fail with a network error, a timeout, a 5xx or a throttling error are retried
 * (`maxAttempts` in all, with jittered backoff), as the SDK client of src/runtime/aws.ts does.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { envCredentials, SigV4, type AwsCredentials } from '../aws/sigv4';
import { QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { sendPacked, type PackedMessage } from './pack';
import type { EventQueue, SendResult } from './types';


export interface FastSqsQueueOptions {
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

export const fastSqsQueueDefaults = {
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

/** A failed call: `retryable` says whether another attempt may succeed. */
class CallError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

const THROTTLING = /Throttl|RequestThrottled|TooManyRequests|SlowDown|RequestLimitExceeded|ServiceUnavailable|InternalError|InternalFailure/;

export class FastSqsEventQueue implements EventQueue {
  private readonly o: FastSqsQueueOptions;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly signer: SigV4;
  private readonly request: typeof httpRequest;

  constructor(opts: Partial<FastSqsQueueOptions> & { queueUrl: string; region: string }) {
    this.o = { ...fastSqsQueueDefaults, ...opts };
    this.url = new URL(this.o.endpoint ?? `https://sqs.${this.o.region}.amazonaws.com/`);
    const https = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: this.o.maxSockets, keepAliveMsecs: 1000 };
    this.agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.request = https ? httpsRequest : httpRequest;
    this.signer = new SigV4(this.o.region, 'sqs');
  }

  send(events: QueuedEvent[]): Promise<SendResult> {
    return sendPacked(events, this.o, (entries) => this.sendBatch(entries));
  }

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    this.agent.destroy();
  }

  /** One SendMessageBatch (with whole-call retries); returns the entries that failed and may succeed on retry. */
  private async sendBatch(entries: PackedMessage[]): Promise<PackedMessage[]> {
    const body = JSON.stringify({ QueueUrl: this.o.queueUrl, Entries: entries.map((m, i) => ({ Id: String(i), MessageBody: m.body })) });
    let res: BatchResponse | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await this.post('AmazonSQS.SendMessageBatch', body);
        break;
      } catch (err) {
        const e = err as CallError;
        if (!e.retryable || attempt >= this.o.maxAttempts) {
          throw new QueueUnavailableError(`queue unavailable (${e.message}); nothing was accepted, retry`);
        }
        await new Promise((r) => setTimeout(r, Math.random() * this.o.retryBaseMs * 2 ** (attempt - 1)));
      }
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

  private post(target: string, text: string): Promise<BatchResponse> {
    const body = Buffer.from(text); // encoded once: hashed for the signature, then written
    const creds = typeof this.o.credentials === 'function' ? this.o.credentials() : (this.o.credentials ?? envCredentials());
    const path = this.url.pathname || '/';
    const headers = this.signer.sign(creds, this.url.host, path, { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target }, body);
    headers['content-length'] = String(body.length);
    return new Promise<BatchResponse>((resolve, reject) => {
      const req = this.request(
        { protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, path, method: 'POST', headers, agent: this.agent, timeout: this.o.requestTimeoutMs },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new CallError(err.message, true)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: Record<string, unknown> = {};
            try {
              json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
            } catch {
              if (status === 200) return reject(new CallError('unreadable SQS answer', true));
            }
            if (status === 200) return resolve(json as BatchResponse);
            const type = String(json.__type ?? res.headers['x-amzn-query-error'] ?? `HTTP ${status}`);
            const code = type.slice(type.lastIndexOf('#') + 1);
            reject(new CallError(code, status >= 500 || status === 429 || THROTTLING.test(code)));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout after ${this.o.requestTimeoutMs} ms`)));
      req.on('error', (err) => reject(new CallError((err as NodeJS.ErrnoException).code ?? err.message, true)));
      req.end(body);
    });
  }
}
