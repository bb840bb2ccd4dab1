/**
 * One AWS JSON-protocol service (SQS, DynamoDB, Secrets Manager: `POST /` with `X-Amz-Target`), spoken over
 * a keep-alive `node:http(s)` agent and signed with SigV4 by `node:crypto`. What sqs-json.ts, dynamo-json.ts
 * and src/secrets.ts share instead of the AWS SDK, whose middleware stack, serde and signer cost ~400 µs
 * of CPU per call.
 *
 * A call either resolves with the parsed JSON of a 200, or rejects with {@link AwsCallError}: its `code`
 * is the service's error type (`ConditionalCheckFailedException`, `ThrottlingException`, …), or the
 * network error; `retryable` says whether another attempt may succeed (network errors, timeouts, 5xx,
 * throttling). {@link AwsJsonClient.callWithRetries} retries those, as the AWS SDK's standard strategy does:
 *
 * - **Bounded by the invocation** (src/util/deadline.ts): each attempt's timeout is at most the time left;
 *   no attempt starts once the deadline has passed ({@link DeadlineExceededError}), and no retry starts
 *   that could not finish before it.
 * - **Jittered exponential backoff**, capped at 20 s.
 * - **A retry budget** per client (./retry-budget.ts): when it is spent, failures are not retried.
 * - **Clock skew**: a signature refused as expired or too skewed (`RequestTimeTooSkewed`,
 *   `InvalidSignatureException` "Signature expired", …) moves the client's clock offset to the server's
 *   `Date` header and is retried once, outside the attempt count.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { attemptTimeoutMs, remainingMs } from '../util/deadline';
import { defaultEndpoint } from './endpoints';
import { RetryBudget } from './retry-budget';
import { envCredentials, SigV4, type AwsCredentials } from './sigv4';

export interface AwsJsonClientOptions {
  /** `sqs`, `dynamodb`, `secretsmanager`: the signing name (also the endpoint prefix). */
  service: string;
  region: string;
  /** Default: `https://<service>.<region>.<partition suffix>/` (src/aws/endpoints.ts). */
  endpoint?: string;
  /** Default: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (as Lambda sets them), read on each call. */
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** `application/x-amz-json-1.0` for SQS and DynamoDB, `1.1` for Secrets Manager. */
  contentType: string;
  /** Per attempt, shortened to what is left of the deadline. */
  requestTimeoutMs: number;
  /** Attempts per call for retryable failures. */
  maxAttempts: number;
  /** First backoff; doubled each attempt, with full jitter. */
  retryBaseMs: number;
  /** Keep-alive sockets per host. */
  maxSockets: number;
  /** Shared by every call of this client. Default: the AWS SDK's standard bucket. */
  retryBudget?: RetryBudget;
}

export const awsJsonClientDefaults = {
  contentType: 'application/x-amz-json-1.0',
  requestTimeoutMs: 3000,
  maxAttempts: 3,
  retryBaseMs: 25,
  maxSockets: 64,
} as const;

/** Longest backoff between attempts (the AWS SDK's cap). */
export const MAX_BACKOFF_MS = 20_000;
/** Less time than this left after a backoff: the retry could not finish, so it is not made. */
export const MIN_ATTEMPT_MS = 50;

/** A failed call; `retryable` says whether another attempt may succeed. */
export class AwsCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The error body's other fields (DynamoDB: `Item` of a failed condition when asked for). */
    readonly body?: Record<string, unknown>,
    /** The server's clock (`Date` header), epoch ms, when the answer had one. */
    readonly serverTime?: number,
  ) {
    super(message);
    this.name = code;
  }
}

const THROTTLING = /Throttl|RequestThrottled|TooManyRequests|SlowDown|RequestLimitExceeded|ProvisionedThroughputExceeded|ServiceUnavailable|InternalError|InternalFailure|InternalServerError/;
const CLOCK_SKEW_CODES = new Set(['RequestTimeTooSkewed', 'RequestExpired', 'RequestInTheFuture', 'AuthFailure']);
const CLOCK_SKEW_MESSAGE = /signature expired|signature not yet current|too skewed|request has expired/i;

/** True when the service refused the request because of the signer's clock. */
export function isClockSkewError(err: AwsCallError): boolean {
  if (CLOCK_SKEW_CODES.has(err.code)) return true;
  return (err.code === 'InvalidSignatureException' || err.code === 'SignatureDoesNotMatch') && CLOCK_SKEW_MESSAGE.test(err.message);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class AwsJsonClient {
  readonly o: AwsJsonClientOptions;
  /** Added to the local clock when signing (server time − local time, learnt from a skew error). */
  clockOffsetMs = 0;
  readonly retryBudget: RetryBudget;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly signer: SigV4;
  private readonly request: typeof httpRequest;

  constructor(opts: Partial<AwsJsonClientOptions> & { service: string; region: string }) {
    this.o = { ...awsJsonClientDefaults, ...opts };
    this.url = new URL(this.o.endpoint ?? defaultEndpoint(this.o.service, this.o.region));
    const https = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: this.o.maxSockets, keepAliveMsecs: 1000 };
    this.agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.request = https ? httpsRequest : httpRequest;
    this.signer = new SigV4(this.o.region, this.o.service);
    this.retryBudget = this.o.retryBudget ?? new RetryBudget();
  }

  /** The endpoint calls go to. */
  get endpoint(): string {
    return this.url.href;
  }

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    this.agent.destroy();
  }

  /** One call, retried while the failure is retryable, attempts, budget and deadline allow. */
  async callWithRetries<T>(target: string, body: string, reviver?: (key: string, value: unknown) => unknown): Promise<T> {
    let spent = 0;
    let skewRetried = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.call<T>(target, body, reviver, attemptTimeoutMs(this.o.requestTimeoutMs));
        this.retryBudget.release(spent);
        return out;
      } catch (err) {
        if (!(err instanceof AwsCallError)) throw err;
        if (!skewRetried && isClockSkewError(err) && err.serverTime !== undefined) {
          // Sign with the server's clock from now on; this retry does not count as an attempt.
          this.clockOffsetMs = err.serverTime - Date.now();
          skewRetried = true;
          attempt--;
          continue;
        }
        if (!err.retryable || attempt >= this.o.maxAttempts) throw err;
        const delay = Math.random() * Math.min(MAX_BACKOFF_MS, this.o.retryBaseMs * 2 ** (attempt - 1));
        if (remainingMs() < delay + MIN_ATTEMPT_MS) throw err; // a retry that could not finish in time
        const cost = this.retryBudget.acquire(err.code === 'TimeoutError');
        if (cost === undefined) throw err; // the budget is spent: no retry storm on a struggling service
        spent += cost;
        await sleep(delay);
      }
    }
  }

  /** One attempt: the parsed answer of a 200, or an {@link AwsCallError}. */
  call<T>(target: string, text: string, reviver?: (key: string, value: unknown) => unknown, timeoutMs = this.o.requestTimeoutMs): Promise<T> {
    const body = Buffer.from(text); // encoded once: hashed for the signature, then written
    const creds = typeof this.o.credentials === 'function' ? this.o.credentials() : (this.o.credentials ?? envCredentials());
    const path = this.url.pathname || '/';
    const now = new Date(Date.now() + this.clockOffsetMs);
    const headers = this.signer.sign(creds, this.url.host, path, { 'content-type': this.o.contentType, 'x-amz-target': target }, body, now);
    headers['content-length'] = String(body.length);
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      const req = this.request(
        { protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, path, method: 'POST', headers, agent: this.agent },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => settle(() => reject(new AwsCallError('NetworkError', err.message, true))));
          res.on('end', () =>
            settle(() => {
              const answer = Buffer.concat(chunks).toString('utf8');
              const status = res.statusCode ?? 0;
              let json: Record<string, unknown> = {};
              try {
                json = answer ? (JSON.parse(answer, reviver) as Record<string, unknown>) : {};
              } catch {
                if (status === 200) return reject(new AwsCallError('UnreadableAnswer', `unreadable ${this.o.service} answer`, true, status));
              }
              if (status === 200) return resolve(json as T);
              const type = String(json.__type ?? json.code ?? res.headers['x-amzn-query-error'] ?? res.headers['x-amzn-errortype'] ?? `HTTP${status}`);
              const code = type.slice(type.lastIndexOf('#') + 1).split(/[;:]/)[0]!;
              const message = String(json.message ?? json.Message ?? code);
              const date = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
              reject(new AwsCallError(code, message, status >= 500 || status === 429 || THROTTLING.test(code), status, json, Number.isFinite(date) ? date : undefined));
            }),
          );
        },
      );
      // One bound for the whole attempt (connect, send, wait, read), not the socket's idle timeout: a server
      // that trickles bytes cannot hold an attempt longer than its timeout.
      timer = setTimeout(() => req.destroy(Object.assign(new Error(`timeout after ${Math.round(timeoutMs)} ms`), { code: 'TimeoutError' })), Math.max(1, timeoutMs));
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? 'NetworkError';
        settle(() => reject(new AwsCallError(code, `${code}: ${err.message}`, true)));
      });
      req.end(body);
    });
  }
}
