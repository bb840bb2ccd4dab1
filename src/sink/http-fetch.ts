/**
 * The `fetch` tally gives posthog-node: the subset posthog-node calls (`POST` with a string, `Blob` or
 * bytes body, headers, an `AbortSignal`; an answer with `status`, `text()`, `json()`, `headers.get()`),
 * spoken over keep-alive `node:http(s)` agents.
 *
 * Why not the global `fetch` (undici), which posthog-node uses by default: a posthog-node delivery of
 * one event (a sampled request's capture) costs ~1,390 µs of CPU through the global `fetch` and ~850 µs
 * through `node:http`, one of 100 events ~3,600 vs ~3,300 µs (`npm run bench`, section 1b); every sampled
 * request and every roll-up delivery pays it. `POSTHOG_HTTP=fetch` (src/config.ts) switches back to
 * posthog-node's own `fetch`.
 *
 * A request written on a kept-alive socket that the server had closed meanwhile (idle timeout; or a
 * Lambda container thawed after a freeze) fails with `ECONNRESET`/`EPIPE` before any answer: it is made
 * once more on a new socket, as Node's documentation advises. PostHog deduplicates by event uuid, so a
 * request that did arrive is not counted twice.
 *
 * @example
 * ```ts
 * import { PostHog } from 'posthog-node';
 * import { nodeHttpFetch } from './http-fetch';
 * const client = new PostHog('phc_…', { host: 'https://eu.i.posthog.com', fetch: nodeHttpFetch });
 * ```
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** What posthog-node passes to `fetch` (its `PostHogFetchOptions`). */
export interface PostHogFetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string | Blob | Uint8Array;
  signal?: AbortSignal;
}

/** What posthog-node reads of an answer (its `PostHogFetchResponse`). */
export interface PostHogFetchAnswer {
  status: number;
  text(): Promise<string>;
  json(): Promise<unknown>;
  headers: { get(name: string): string | null };
}

const agentOptions = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 16 };
const httpAgent = new HttpAgent(agentOptions);
const httpsAgent = new HttpsAgent(agentOptions);

/** Errors of a stale kept-alive socket: the server closed it before our request reached it. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE']);

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  // A DOMException (AbortSignal.timeout's TimeoutError) is an Error, but maybe of another realm.
  if (reason !== null && typeof reason === 'object' && typeof (reason as Error).name === 'string') return reason as Error;
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function once(url: URL, init: PostHogFetchInit, body: Buffer | undefined, retryStale: boolean): Promise<PostHogFetchAnswer> {
  return new Promise<PostHogFetchAnswer>((resolve, reject) => {
    const { signal } = init;
    if (signal?.aborted) return reject(abortError(signal));
    const https = url.protocol === 'https:';
    const headers: OutgoingHttpHeaders = { ...init.headers };
    if (body) headers['content-length'] = body.length;
    let answered = false;
    const req = (https ? httpsRequest : httpRequest)(
      { protocol: url.protocol, hostname: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: init.method, headers, agent: https ? httpsAgent : httpAgent },
      (res: IncomingMessage) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(() => reject(err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          finish(() =>
            resolve({
              status: res.statusCode ?? 0,
              text: async () => text,
              json: async () => JSON.parse(text) as unknown,
              headers: {
                get: (name: string) => {
                  const v = res.headers[name.toLowerCase()];
                  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v);
                },
              },
            }),
          );
        });
      },
    );
    const onAbort = () => req.destroy(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (fn: () => void) => {
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (retryStale && !answered && req.reusedSocket && err.code !== undefined && STALE_SOCKET.has(err.code) && !signal?.aborted) {
        finish(() => resolve(once(url, init, body, false)));
        return;
      }
      finish(() => reject(err));
    });
    req.end(body);
  });
}

/** A `fetch` for posthog-node over `node:http(s)`; see the module comment. */
export async function nodeHttpFetch(url: string, init: PostHogFetchInit): Promise<PostHogFetchAnswer> {
  const b = init.body;
  const body = b === undefined ? undefined : typeof b === 'string' ? Buffer.from(b) : b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(await b.arrayBuffer());
  return once(new URL(url), init, body, true);
}
