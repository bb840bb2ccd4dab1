/**
 * One request to tally: a batch's body, gzipped once (node:zlib on Node, `CompressionStream` where
 * that exists, else plain JSON), POSTed to `/v1/usage` (node:http(s) with a keep-alive agent on Node,
 * `fetch` elsewhere or when one is given), and the answer sorted into delivered, rejected (a 4xx other
 * than 408/429: retrying cannot help) or retry (network error, timeout, 408, 429, 5xx), with the
 * server's `Retry-After` on 429 and 503.
 */
import { parseRetryAfter } from './backoff';
import { globals, nodeBuiltin, type FetchLike, type NodeHttp, type NodeZlib } from './platform';

/** A request body, ready to send (and to send again, byte for byte, on a retry). */
export interface EncodedBody {
  body: Uint8Array | string;
  gzip: boolean;
}

export type Compression = 'gzip' | 'none';

/** Bodies smaller than this go uncompressed: gzip would save nothing worth its CPU. */
export const MIN_GZIP_BYTES = 1024;
/** zlib level 1: most of the size reduction on repetitive JSON for a third of the default level's CPU. */
const GZIP_LEVEL = 1;

export type Encoder = (json: string) => Promise<EncodedBody>;

/** An encoder for this runtime: gzip where the runtime can, plain JSON otherwise or when asked. */
export function createEncoder(compression: Compression): Encoder {
  const plain: Encoder = async (json) => ({ body: json, gzip: false });
  if (compression === 'none') return plain;
  const zlib = nodeBuiltin<NodeZlib>('node:zlib');
  if (zlib) {
    return (json) =>
      json.length < MIN_GZIP_BYTES
        ? plain(json)
        : new Promise((resolve, reject) => zlib.gzip(json, { level: GZIP_LEVEL }, (err, out) => (err ? reject(err) : resolve({ body: out, gzip: true }))));
  }
  const CS = globals.CompressionStream;
  const R = globals.Response;
  if (CS && R) {
    return async (json) => {
      if (json.length < MIN_GZIP_BYTES) return plain(json);
      const stream = new R(json).body.pipeThrough(new CS('gzip'));
      return { body: new Uint8Array(await new R(stream).arrayBuffer()), gzip: true };
    };
  }
  return plain;
}

export type SendOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'rejected'; status: number; message: string }
  | { kind: 'retry'; status?: number; retryAfterMs?: number; message: string; cause?: unknown };

/** Whether a status is worth retrying: timeouts, throttling and server errors. */
export const isRetryableStatus = (status: number): boolean => status === 408 || status === 429 || (status >= 500 && status <= 599);

/** An answer, or a thrown error for no answer. */
interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

/** Sends one body with its headers; rejects when no answer came (network error, timeout). */
export type Transport = (body: Uint8Array | string, headers: Record<string, string>) => Promise<Answer>;

/** Answers are read up to this many characters (error messages); the rest is drained. */
const MAX_ANSWER_CHARS = 16_384;

function abortAfter(ms: number): unknown {
  const A = (globalThis as unknown as { AbortSignal?: { timeout?(ms: number): unknown } }).AbortSignal;
  return A?.timeout?.(ms);
}

/** WHATWG fetch (Deno, Bun, Workers, browsers, or a `fetch` given in the options). */
export function fetchTransport(fetch: FetchLike, url: string, timeoutMs: number): Transport {
  return async (body, headers) => {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: abortAfter(timeoutMs) });
    // Read the answer to the end: the connection goes back to the pool.
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text: text.slice(0, MAX_ANSWER_CHARS) };
  };
}

/**
 * node:http or node:https with a keep-alive agent of `maxSockets` connections: about a quarter of
 * fetch's CPU per request on Node (undici's fetch costs ~2 ms of CPU per request on the benchmark
 * machine, node:http ~0.4 ms). Undefined where the runtime has no node:http.
 */
export function nodeHttpTransport(url: string, timeoutMs: number, maxSockets: number): Transport | undefined {
  const u = new URL(url);
  const http = nodeBuiltin<NodeHttp>(u.protocol === 'https:' ? 'node:https' : 'node:http');
  if (!http) return undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const target = { protocol: u.protocol, hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || undefined, path: `${u.pathname}${u.search}`, method: 'POST', agent };
  return (body, headers) =>
    new Promise<Answer>((resolve, reject) => {
      const len = typeof body === 'string' ? utf8Bytes(body) : body.byteLength;
      const req = http.request({ ...target, headers: { ...headers, 'content-length': String(len) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < MAX_ANSWER_CHARS) text += chunk;
        });
        res.on('end', () => {
          const ra = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, retryAfter: typeof ra === 'string' ? ra : null, text: text.slice(0, MAX_ANSWER_CHARS) });
        });
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
}

const utf8Bytes = (s: string): number => globals.Buffer?.byteLength(s, 'utf8') ?? new TextEncoder().encode(s).byteLength;

/** The reason in an error answer: tally's `{"error","message"}`, or the start of the body. */
function reason(status: number, text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown; error?: unknown };
    if (typeof j.message === 'string') return `${status} ${j.message}`;
    if (typeof j.error === 'string') return `${status} ${j.error}`;
  } catch {
    /* not JSON */
  }
  return text ? `${status} ${text.slice(0, 300)}` : String(status);
}

/** POSTs one encoded batch; never throws. */
export async function postBatch(send: Transport, key: string, encoded: EncodedBody): Promise<SendOutcome> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  if (encoded.gzip) headers['content-encoding'] = 'gzip';
  let a: Answer;
  try {
    a = await send(encoded.body, headers);
  } catch (err) {
    // fetch's own message is "fetch failed"; the reason (ECONNREFUSED, a timeout, …) is its cause.
    const e = err as { message?: string; code?: string; name?: string; cause?: { code?: string; message?: string } };
    const why = e?.code ?? e?.cause?.code ?? e?.cause?.message ?? e?.name;
    return { kind: 'retry', message: `request to tally failed: ${e?.message ?? String(err)}${why && why !== 'Error' && !e?.message?.includes(why) ? ` (${why})` : ''}`, cause: err };
  }
  const { status, text } = a;
  if (status >= 200 && status <= 299) return { kind: 'delivered', status };
  if (isRetryableStatus(status)) {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(a.retryAfter) : undefined;
    return { kind: 'retry', status, retryAfterMs, message: `tally answered ${reason(status, text)}` };
  }
  return { kind: 'rejected', status, message: `tally answered ${reason(status, text)}` };
}
