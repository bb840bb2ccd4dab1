/**
 * API-key check in constant time: the presented key is hashed and compared with each configured
 * key's hash, so neither length nor prefix leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from '../errors';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export type KeyChecker = (presented: string | undefined) => void;

/** Builds a checker for the configured keys; it throws 401 for a missing or unknown key. */
export function createKeyChecker(keys: readonly string[]): KeyChecker {
  const hashes = keys.map(sha256);
  return (presented) => {
    if (presented === undefined || presented.length === 0) throw new UnauthorizedError('missing API key');
    const h = sha256(presented);
    let ok = false;
    for (const k of hashes) ok = timingSafeEqual(h, k) || ok;
    if (!ok) throw new UnauthorizedError('unknown API key');
  };
}

/** The key from `Authorization: Bearer <key>` or `x-api-key`. Header names are lower-case (API Gateway v2). */
export function keyFromHeaders(headers: Record<string, string | undefined>): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  return headers['x-api-key']?.trim() || undefined;
}
