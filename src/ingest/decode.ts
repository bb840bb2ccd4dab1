/**
 * Stage 1 of ingest: turn an API Gateway body into a JSON value, the way PostHog's capture does, deciding
 * from the bytes rather than the headers wherever possible:
 *
 * - gzip is recognised by its magic bytes whatever the headers say, whether API Gateway passed the body
 *   as base64 or as text; a gzip body passed as text that lost bytes on the way (invalid UTF-8 replaced)
 *   cannot be repaired, and gets a 400 `body_altered_in_transit` naming the client setting to change;
 * - `compression=base64`, base64 bodies and form-encoded `data=` bodies (older posthog-js) are accepted;
 * - sizes are limited before and after decompression, so a gzip bomb is a 413, not an out-of-memory;
 * - JSON nested deeper than {@link MAX_JSON_DEPTH} is a 400 naming the field (it would overflow the stack
 *   of every later stage);
 * - a numeric distinct id is kept as its JSON text (`12345678901234567890`, not `12345678901234567000`),
 *   as PostHog does.
 *
 * {@link probeBodyKey} reads the key of a PostHog body from its first bytes, so a wrong key is refused
 * before the body is decompressed and parsed in full.
 */
import { constants, gunzipSync } from 'node:zlib';
import { BadRequestError, HttpError, PayloadTooLargeError } from '../errors';

export interface RawBody {
  body?: string;
  isBase64Encoded?: boolean;
  /** `compression` query parameter as PostHog SDKs send it (gzip-js, base64, lz64). */
  compression?: string;
  /** `content-type`, only to name the client setting when a body was altered in transit. */
  contentType?: string;
}

/** Deepest JSON nesting accepted (arrays and objects), body included. */
export const MAX_JSON_DEPTH = 64;

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;
const REPLACEMENT = 0xfffd;

/** The client settings that stop a gzip body from being altered on its way through API Gateway. */
const GZIP_AS_TEXT_FIX =
  'API Gateway delivered this gzip body as text and bytes were lost on the way; it cannot be decoded. ' +
  'Send it uncompressed (posthog-node: disableCompression: true; posthog-js: disable_compression: true) ' +
  'or send gzip with Content-Type: application/octet-stream (docs/DEPLOY.md, "Compressed bodies")';

/** Parses the body; `maxBytes` bounds both the received and the decompressed size. */
export function decodeBody(raw: RawBody, maxBytes: number): unknown {
  return parseJson(decodeText(raw, maxBytes));
}

/** The body as JSON text: gunzipped, base64- and form-decoded as needed. */
export function decodeText(raw: RawBody, maxBytes: number): string {
  const body = raw.body ?? '';
  if (body.length === 0) throw new BadRequestError('empty body: expected a JSON object');

  if (!raw.isBase64Encoded) {
    if (body.length > maxBytes || (body.length * 3 > maxBytes && Buffer.byteLength(body) > maxBytes)) throw new PayloadTooLargeError(maxBytes);
    // gzip handed over as text: intact if every byte became one character (ISO-8859-1), lost if
    // invalid UTF-8 was replaced by U+FFFD.
    if (body.charCodeAt(0) === GZIP_MAGIC_0 && (body.charCodeAt(1) === GZIP_MAGIC_1 || body.charCodeAt(1) === REPLACEMENT)) {
      if (body.charCodeAt(1) === GZIP_MAGIC_1 && isLatin1(body)) return textOf(gunzip(Buffer.from(body, 'latin1'), maxBytes), raw);
      throw new HttpError('body_altered_in_transit', GZIP_AS_TEXT_FIX);
    }
    return textOf(body, raw);
  }

  const bytes = Buffer.from(body, 'base64');
  if (bytes.length > maxBytes) throw new PayloadTooLargeError(maxBytes);
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1) return textOf(gunzip(bytes, maxBytes), raw);
  return textOf(bytes.toString('utf8'), raw);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function gunzip(bytes: Buffer, maxBytes: number): string {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8');
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PayloadTooLargeError(maxBytes, 'decompressed body');
    }
    throw new BadRequestError(`body starts like gzip but does not decompress: ${(err as Error).message}`);
  }
}

const BASE64 = /^[A-Za-z0-9+/=_\-\s]+$/;
/** `name=value…` (a base64 body's `=` padding, at the end only, is not a form). */
const FORM = /^[\w.%+-]+=(?!=*$)/;

/** Decoded text → JSON text: lz64 refused, `data=` forms unwrapped, base64 decoded. */
function textOf(text: string, raw: RawBody): string {
  const compression = raw.compression?.toLowerCase();
  if (compression === 'lz64' || compression === 'lz-string') {
    throw new BadRequestError('compression lz64 is not supported: send gzip (gzip-js) or plain JSON');
  }
  let json = text;
  const first = firstChar(text);
  // Form bodies: data=<json or base64 json> (posthog-js fallback transports). A JSON body sent with
  // curl's default form content type is still JSON.
  if (first !== '{' && first !== '[' && FORM.test(text)) {
    const form = new URLSearchParams(text);
    const data = form.get('data');
    if (data === null) {
      const fields = [...new Set(form.keys())].slice(0, 5).join(', ');
      throw new BadRequestError(`form-encoded body without a data field (fields: ${fields}): send JSON, or data=<JSON or base64-encoded JSON>`);
    }
    json = data;
  }
  if (compression === 'base64') return Buffer.from(json, 'base64').toString('utf8');
  const c = firstChar(json);
  if (c !== '{' && c !== '[' && c !== '"' && !isJsonScalar(json) && BASE64.test(json.slice(0, 256))) {
    const decoded = Buffer.from(json, 'base64').toString('utf8');
    const d = firstChar(decoded);
    if (d === '{' || d === '[') return decoded;
  }
  return json;
}

const firstChar = (s: string): string => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return s[i]!;
  }
  return '';
};

const SCALAR = /^\s*(?:null|true|false|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*$/;
const isJsonScalar = (s: string): boolean => s.length < 400 && SCALAR.test(s);

/** A distinct id written as a JSON number, under any of the keys PostHog and tally read it from. */
const NUMERIC_ID = /"(?:distinct_id|distinctId|\$distinct_id)"\s*:\s*-?\d/;
const ID_KEYS = new Set(['distinct_id', 'distinctId', '$distinct_id']);

/** JSON text → value, with clear messages, a nesting bound, and numeric distinct ids as their text. */
export function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`malformed JSON: ${(err as Error).message}`);
  }
  // A numeric id loses digits as a JS number: read it again as written (rare: only when one is present).
  if (NUMERIC_ID.test(text)) {
    value = JSON.parse(text, function (this: unknown, key: string, v: unknown, ctx?: { source?: string }) {
      return typeof v === 'number' && ID_KEYS.has(key) && ctx?.source !== undefined ? ctx.source : v;
    } as (key: string, value: unknown) => unknown);
  }
  if (mayBeDeeperThan(text, MAX_JSON_DEPTH)) {
    const path = tooDeep(value, MAX_JSON_DEPTH);
    if (path !== undefined) {
      throw new BadRequestError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, [{ path, message: `nested deeper than ${MAX_JSON_DEPTH} levels` }]);
    }
  }
  return value;
}

/** Cheap: fewer brackets than the limit cannot nest deeper than it. */
function mayBeDeeperThan(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1 && n <= limit; i = text.indexOf('{', i + 1)) n++;
  for (let i = text.indexOf('['); i !== -1 && n <= limit; i = text.indexOf('[', i + 1)) n++;
  return n > limit;
}

/** The path (`batch.3.properties.a…`) of the first value nested deeper than `limit`, if any. */
function tooDeep(value: unknown, limit: number): string | undefined {
  const path: (string | number)[] = [];
  const visit = (v: unknown, depth: number): boolean => {
    if (v === null || typeof v !== 'object') return false;
    if (depth > limit) return true;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        if (visit(v[i], depth + 1)) return true;
        path.pop();
      }
      return false;
    }
    for (const k in v as Record<string, unknown>) {
      path.push(k);
      if (visit((v as Record<string, unknown>)[k], depth + 1)) return true;
      path.pop();
    }
    return false;
  };
  if (!visit(value, 1)) return undefined;
  const shown = path.length > 8 ? [...path.slice(0, 6), '…', path[path.length - 1]!] : path;
  return shown.join('.') || '(body)';
}

const KEY_AT_START = /^\s*\{\s*"(?:api_key|token)"\s*:\s*"((?:[^"\\]|\\.){1,200})"/;

/**
 * The key of a PostHog body whose first field is `api_key` or `token` (posthog-node's shape:
 * `{"api_key":"…","batch":[…]}`), read from at most the first few KB of the (decompressed) body, so a
 * wrong key is refused before the whole body is decompressed and parsed. `undefined` when the body does not
 * start that way (the key is then checked right after parsing, before validation).
 */
export function probeBodyKey(raw: RawBody): string | undefined {
  const body = raw.body ?? '';
  if (body.length === 0) return undefined;
  let head: string;
  try {
    if (raw.isBase64Encoded) {
      const bytes = Buffer.from(body.slice(0, 4096), 'base64');
      // A truncated gzip stream, flushed: at most ~1 KB of compressed input, so bounded output (≤ ~1 MB).
      head = bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1 ? gunzipSync(bytes.subarray(0, 1024), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1 << 20 }).toString('utf8') : bytes.toString('utf8');
    } else {
      head = body.slice(0, 4096);
    }
  } catch {
    return undefined; // not readable this way: decided after parsing
  }
  const m = KEY_AT_START.exec(head);
  return m ? (JSON.parse(`"${m[1]}"`) as string) : undefined;
}
