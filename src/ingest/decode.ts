/**
 * Stage 1 of ingest: turn an API Gateway body into a JSON value, the way PostHog's capture does.
 * gzip is recognised by its magic bytes whatever the headers say; `compression=base64` and
 * form-encoded `data=` bodies (older posthog-js) are accepted; sizes are limited before and after
 * decompression so a gzip bomb is a 413, not an out-of-memory.
 */
import { gunzipSync } from 'node:zlib';
import { BadRequestError, PayloadTooLargeError } from '../errors';

export interface RawBody {
  body?: string;
  isBase64Encoded?: boolean;
  /** `compression` query parameter as PostHog SDKs send it (gzip-js, base64, lz64). */
  compression?: string;
}

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

/** Parses the body; `maxBytes` bounds both the received and the decompressed size. */
export function decodeBody(raw: RawBody, maxBytes: number): unknown {
  const body = raw.body ?? '';
  if (body.length === 0) throw new BadRequestError('empty body: expected a JSON object');

  // Fast path: plain JSON text (the native API, uncompressed SDKs).
  if (!raw.isBase64Encoded) {
    if (body.length > maxBytes || (body.length * 3 > maxBytes && Buffer.byteLength(body) > maxBytes)) {
      throw new PayloadTooLargeError(maxBytes);
    }
    return parseText(body, raw);
  }

  const bytes = Buffer.from(body, 'base64');
  if (bytes.length > maxBytes) throw new PayloadTooLargeError(maxBytes);
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1) {
    return parseText(gunzip(bytes, maxBytes), raw);
  }
  return parseText(bytes.toString('utf8'), raw);
}

function gunzip(bytes: Buffer, maxBytes: number): string {
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8');
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PayloadTooLargeError(maxBytes);
    }
    throw new BadRequestError(`body starts like gzip but does not decompress: ${(err as Error).message}`);
  }
}

function parseText(text: string, raw: RawBody): unknown {
  const compression = raw.compression?.toLowerCase();
  if (compression === 'lz64' || compression === 'lz-string') {
    throw new BadRequestError('compression lz64 is not supported: send gzip (gzip-js) or plain JSON');
  }
  let json = text;
  // Form bodies: data=<json or base64 json> (posthog-js fallback transports). A JSON body sent with
  // curl's default form content type is still JSON.
  if (text.startsWith('data=')) {
    const data = new URLSearchParams(text).get('data');
    if (data === null) throw new BadRequestError('form body without a data field');
    json = data;
  }
  if (compression === 'base64' || (json.length > 0 && json[0] !== '{' && json[0] !== '[' && /^[A-Za-z0-9+/=\s]+$/.test(json.slice(0, 64)))) {
    json = Buffer.from(json, 'base64').toString('utf8');
  }
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new BadRequestError(`malformed JSON: ${(err as Error).message}`);
  }
}
