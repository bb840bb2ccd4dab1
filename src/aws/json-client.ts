/**
 * One AWS JSON-protocol service (SQS, DynamoDB: `POST /` with `X-Amz-Target`), spoken over a keep-alive
 * `node:http(s)` agent and signed with SigV4 by `node:crypto`. What sqs-json.ts and dynamo-json.ts share
 * instead of the AWS SDK, whose middleware stack, serde and signer cost ~400 µs of CPU per call.
 *
 * A call either resolves with the parsed JSON of a 200, or rejects with {@link AwsCallError}: its `code`
 * is the service's error type (`ConditionalCheckFailedException`, `ThrottlingException`, …), or the
 * network error; `retryable` says whether another attempt may succeed (network errors, timeouts, 5xx,
 * throttling). {@link AwsJsonClient.callWithRetries} retries those with jittered exponential backoff.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { envCredentials, SigV4, type AwsCredentials } from './sigv4';

export interface AwsJsonClientOptions {
  /** `sqs`, `dynamodb`: the signing name. */
  service: string;
  region: string;
  /** Default `https://<service>.<region>.amazonaws.com`. */
  endpoint?: string;
  /** Default: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (as Lambda sets them), read on each call. */
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** `application/x-amz-json-1.0` for both SQS and DynamoDB. */
  contentType: string;
  /** Per attempt. */
  requestTimeoutMs: number;
  /** Attempts per call for retryable failures. */
  maxAttempts: number;
  /** First backoff; doubled each attempt, with full jitter. */
  retryBaseMs: number;
  /** Keep-alive sockets per host. */
  maxSockets: number;
}

export const awsJsonClientDefaults = {
  contentType: 'application/x-amz-json-1.0',
  requestTimeoutMs: 3000,
  maxAttempts: 3,
  retryBaseMs: 25,
  maxSockets: 64,
} as const;

/** A failed call; `retryable` says whether another attempt may succeed. */
export class AwsCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The error body's other fields (DynamoDB: `Item` of a failed condition when asked for). */
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
    this.name = code;
  }
}

const THROTTLING = /Throttl|RequestThrottled|TooManyRequests|SlowDown|RequestLimitExceeded|ProvisionedThroughputExceeded|ServiceUnavailable|InternalError|InternalFailure|InternalServerError/;

export class AwsJsonClient {
  readonly o: AwsJsonClientOptions;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly signer: SigV4;
  private readonly request: typeof httpRequest;

  constructor(opts: Partial<AwsJsonClientOptions> & { service: string; region: string }) {
    this.o = { ...awsJsonClientDefaults, ...opts };
    this.url = new URL(this.o.endpoint ?? `https://${this.o.service}.${this.o.region}.amazonaws.com/`);
    const https = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: this.o.maxSockets, keepAliveMsecs: 1000 };
    this.agent = https ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.request = https ? httpsRequest : httpRequest;
    this.signer = new SigV4(this.o.region, this.o.service);
  }

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    this.agent.destroy();
  }

  /** One call, retried while the failure is retryable and attempts remain. */
  async callWithRetries<T>(target: string, body: string, reviver?: (key: string, value: unknown) => unknown): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call<T>(target, body, reviver);
      } catch (err) {
        if (!(err instanceof AwsCallError) || !err.retryable || attempt >= this.o.maxAttempts) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * this.o.retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  /** One attempt: the parsed answer of a 200, or an {@link AwsCallError}. */
  call<T>(target: string, text: string, reviver?: (key: string, value: unknown) => unknown): Promise<T> {
    const body = Buffer.from(text); // encoded once: hashed for the signature, then written
    const creds = typeof this.o.credentials === 'function' ? this.o.credentials() : (this.o.credentials ?? envCredentials());
    const path = this.url.pathname || '/';
    const headers = this.signer.sign(creds, this.url.host, path, { 'content-type': this.o.contentType, 'x-amz-target': target }, body);
    headers['content-length'] = String(body.length);
    return new Promise<T>((resolve, reject) => {
      const req = this.request(
        { protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, path, method: 'POST', headers, agent: this.agent, timeout: this.o.requestTimeoutMs },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new AwsCallError('NetworkError', err.message, true)));
          res.on('end', () => {
            const answer = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: Record<string, unknown> = {};
            try {
              json = answer ? (JSON.parse(answer, reviver) as Record<string, unknown>) : {};
            } catch {
              if (status === 200) return reject(new AwsCallError('UnreadableAnswer', `unreadable ${this.o.service} answer`, true, status));
            }
            if (status === 200) return resolve(json as T);
            const type = String(json.__type ?? res.headers['x-amzn-query-error'] ?? `HTTP${status}`);
            const code = type.slice(type.lastIndexOf('#') + 1).split(';')[0]!;
            const message = String(json.message ?? json.Message ?? code);
            reject(new AwsCallError(code, message, status >= 500 || status === 429 || THROTTLING.test(code), status, json));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timeout after ${this.o.requestTimeoutMs} ms`)));
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? 'NetworkError';
        reject(new AwsCallError(code, `${code}: ${err.message}`, true));
      });
      req.end(body);
    });
  }
}
