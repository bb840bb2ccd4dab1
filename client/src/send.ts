/**
 * One request to tally: a batch's body, gzipped once (node:zlib on Node, `CompressionStream` where
 * that exists, else plain JSON), POSTed to `/v1/usage`, and the answer sorted into delivered,
 * rejected (a 4xx other than 408/429: retrying cannot help) or retry (network error, timeout, 408,
 * 429, 5xx), with the server's `Retry-After` on 429 and 503.
 */
import { parseRetryAfter } from './backoff';
import { globals, nodeBuiltin, type FetchLike, type NodeZlib } from './platform';

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

function abortAfter(ms: number): unknown {
  const A = (globalThis as unknown as { AbortSignal?: { timeout?(ms: number): unknown } }).AbortSignal;
  return A?.timeout?.(ms);
}

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
export async function postBatch(fetch: FetchLike, url: string, key: string, encoded: EncodedBody, timeoutMs: number): Promise<SendOutcome> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  if (encoded.gzip) headers['content-encoding'] = 'gzip';
  let status: number;
  let text: string;
  let retryAfter: string | null;
  try {
    const res = await fetch(url, { method: 'POST', headers, body: encoded.body, redirect: 'manual', signal: abortAfter(timeoutMs) });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    // Read the answer to the end: the connection goes back to the pool.
    text = await res.text();
  } catch (err) {
    return { kind: 'retry', message: `request to tally failed: ${(err as Error)?.message ?? String(err)}`, cause: err };
  }
  if (status >= 200 && status <= 299) return { kind: 'delivered', status };
  if (isRetryableStatus(status)) {
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter) : undefined;
    return { kind: 'retry', status, retryAfterMs, message: `tally answered ${reason(status, text)}` };
  }
  return { kind: 'rejected', status, message: `tally answered ${reason(status, text)}` };
}
