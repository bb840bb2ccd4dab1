import { createHash, randomFillSync } from 'node:crypto';

// Random bytes are drawn in blocks: one syscall per 512 uuids instead of one per uuid.
const POOL = Buffer.alloc(10 * 512);
let poolAt = POOL.length;
const VARIANT = ['8', '9', 'a', 'b'];
// The time part changes once per millisecond; a batch of events received together shares it.
let prefixMs = -1;
let prefix = '';

/**
 * A new time-ordered UUID (RFC 9562 version 7: 48-bit Unix ms, the version, 12 random bits, the
 * variant, 62 random bits), as PostHog assigns when a client sends none. A few lines here instead of
 * the `uuid` package, which is ESM-only; ~1 µs less per 3 uuids than formatting byte by byte.
 */
export function uuidv7(now = Date.now()): string {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 10;
  if (now !== prefixMs) {
    const ms = now.toString(16).padStart(12, '0');
    prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
    prefixMs = now;
  }
  // 9 random bytes as 18 hex digits (72 bits), and 2 more bits from a tenth byte for the variant digit.
  const h = POOL.toString('hex', r, r + 9);
  return `${prefix}${h.slice(0, 3)}-${VARIANT[POOL[r + 9]! & 3]}${h.slice(3, 6)}-${h.slice(6, 18)}`;
}

/**
 * A deterministic UUID (RFC 4122 layout, version 5 bits) from the parts given: the same parts always
 * give the same uuid, so a batch event re-sent after a failure is deduplicated by PostHog.
 */
export function deterministicUuid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('\u0000')).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex', 0, 16);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A short, URL-safe digest of a string (sha256, 128 bits): message ids, cache keys. */
export const digest = (s: string): string => createHash('sha256').update(s).digest('base64url').slice(0, 22);
