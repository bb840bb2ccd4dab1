/**
 * UUIDv7 (RFC 9562: 48-bit Unix ms, version 7, 12 random bits, variant, 62 random bits), made at
 * `track()` time so that a retried batch carries the same uuids and tally counts it once. Random
 * bytes come from `crypto.getRandomValues` in blocks of 4,096 uuids (40 KB).
 */
import { globals } from './platform';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_UUIDS = 4096;
const pool = new Uint8Array(10 * POOL_UUIDS);
let at = pool.length;
let prefixMs = -1;
let prefix = '';

function refill(): void {
  const c = globals.crypto;
  if (!c) throw new Error('crypto.getRandomValues is not available in this runtime');
  c.getRandomValues(pool);
  at = 0;
}

/**
 * A new UUIDv7 for time `now` (epoch ms).
 *
 * @example
 * ```ts
 * uuidv7(); // '019a4f2c-8b1e-7c3a-9f21-4d5e6f708192'
 * ```
 */
export function uuidv7(now: number = Date.now()): string {
  if (at + 10 > pool.length) refill();
  const r = at;
  at += 10;
  if (now !== prefixMs) {
    const ms = now.toString(16).padStart(12, '0');
    prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
    prefixMs = now;
  }
  const p = pool;
  return (
    prefix +
    HEX[p[r]!]!.charAt(1) +
    HEX[p[r + 1]!] +
    '-' +
    HEX[(p[r + 2]! & 0x3f) | 0x80] +
    HEX[p[r + 3]!] +
    '-' +
    HEX[p[r + 4]!] +
    HEX[p[r + 5]!] +
    HEX[p[r + 6]!] +
    HEX[p[r + 7]!] +
    HEX[p[r + 8]!] +
    HEX[p[r + 9]!]
  );
}
