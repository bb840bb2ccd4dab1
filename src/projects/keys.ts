/**
 * Secret keys and their hashes. A key is `tk_` and 40 random base62 characters (238 bits): shown once,
 * stored only as its sha256. A fast hash is enough for keys this random (no dictionary to try), and it
 * keeps the per-request check cheap; comparisons of hashes are constant-time.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_KEY_PREFIX = 'tk_';
export const TOKEN_PREFIX = 'tt_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Secret keys: `tk_` + 32 to 64 base62 characters (tally makes 40). */
const SECRET_SHAPE = /^tk_[0-9A-Za-z]{32,64}$/;
/** Keys of the configured list (`TALLY_API_KEYS`, the local key): printable ASCII, 8–200 characters. */
const LEGACY_SHAPE = /^[\x21-\x7e]{8,200}$/;

/** `n` random base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === n) break;
    }
  }
  return out;
}

export const newSecretKey = (): string => `${SECRET_KEY_PREFIX}${randomBase62(40)}`;
export const newKeyId = (): string => `key_${randomBase62(14)}`;

/** sha256 of a key, base64url: what the store keeps and looks keys up by (one-shot `crypto.hash`: half of `createHash`'s CPU). */
export const hashKey = (key: string): string => hash('sha256', key, 'base64url');

/** What a presented credential looks like, before any lookup: a secret key, a client token, or neither. */
export function credentialShape(k: string | undefined): 'secret' | 'token' | 'legacy' | undefined {
  if (k === undefined || k.length === 0) return undefined;
  if (k.startsWith(SECRET_KEY_PREFIX)) return SECRET_SHAPE.test(k) ? 'secret' : undefined;
  if (k.startsWith(TOKEN_PREFIX)) return k.length <= 2048 ? 'token' : undefined;
  return LEGACY_SHAPE.test(k) ? 'legacy' : undefined;
}

/** Constant-time equality of two hashes (base64url strings of the same length). */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
