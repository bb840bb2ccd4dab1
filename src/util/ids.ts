import { createHash, randomFillSync } from 'node:crypto';

// Random bytes are drawn in blocks: one syscall per 512 uuids instead of one per uuid.
const POOL = Buffer.alloc(10 * 512);
let poolAt = POOL.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A new time-ordered UUID (RFC 9562 version 7: 48-bit Unix ms, then 74 random bits), as PostHog
 * assigns when a client sends none. Ten lines here instead of the `uuid` package, which is ESM-only.
 */
export function uuidv7(now = Date.now()): string {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 10;
  const ms = now.toString(16).padStart(12, '0');
  const b = POOL;
  return (
    `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${HEX[b[r]! & 0x0f]!.slice(1)}${HEX[b[r + 1]!]}-` +
    `${HEX[(b[r + 2]! & 0x3f) | 0x80]}${HEX[b[r + 3]!]}-${HEX[b[r + 4]!]}${HEX[b[r + 5]!]}${HEX[b[r + 6]!]}${HEX[b[r + 7]!]}${HEX[b[r + 8]!]}${HEX[b[r + 9]!]}`
  );
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
