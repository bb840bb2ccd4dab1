/**
 * Client tokens: short-lived (≤ 15 minutes), signed credentials a browser or mobile app uses instead of
 * a secret key, verified in memory. `tt_<payload>.<signature>`, both base64url; the payload is
 * `{"p": project, "d"?: distinct id, "e": expiry (epoch s), "v": token secret version}`, the signature
 * an HMAC-SHA256 with the project's token secret, itself HMAC(master secret, `<project>:<version>`): one
 * master secret (Secrets Manager) serves every project, and bumping a project's version revokes all of
 * its tokens at once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { TOKEN_PREFIX } from './keys';

export const TOKEN_TTL = { default: 900, max: 900, min: 1 } as const;

export interface TokenClaims {
  project: string;
  distinctId?: string;
  /** Expiry, epoch seconds. */
  exp: number;
  version: number;
}

/** Why a token was refused. */
export class TokenError extends Error {
  constructor(
    readonly reason: 'token_invalid' | 'token_expired',
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

const projectSecret = (master: Buffer, project: string, version: number): Buffer => createHmac('sha256', master).update(`${project}:${version}`).digest();

export function signToken(claims: Omit<TokenClaims, 'exp'> & { ttlSeconds: number }, master: Buffer, now = Date.now()): { token: string; expiresAt: string; claims: TokenClaims } {
  const exp = Math.floor(now / 1000) + claims.ttlSeconds;
  const c: TokenClaims = { project: claims.project, exp, version: claims.version, ...(claims.distinctId !== undefined ? { distinctId: claims.distinctId } : {}) };
  const payload = Buffer.from(JSON.stringify({ p: c.project, ...(c.distinctId !== undefined ? { d: c.distinctId } : {}), e: c.exp, v: c.version })).toString('base64url');
  const sig = createHmac('sha256', projectSecret(master, c.project, c.version)).update(payload).digest('base64url');
  return { token: `${TOKEN_PREFIX}${payload}.${sig}`, expiresAt: new Date(exp * 1000).toISOString(), claims: c };
}

/** Checks a token's signature and expiry; throws {@link TokenError}. No lookup. */
export function verifyToken(token: string, master: Buffer, now = Date.now()): TokenClaims {
  const body = token.startsWith(TOKEN_PREFIX) ? token.slice(TOKEN_PREFIX.length) : '';
  const dot = body.indexOf('.');
  if (dot <= 0) throw new TokenError('token_invalid', 'malformed client token');
  const payload = body.slice(0, dot);
  let claims: { p?: unknown; d?: unknown; e?: unknown; v?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    throw new TokenError('token_invalid', 'malformed client token');
  }
  if (typeof claims.p !== 'string' || typeof claims.e !== 'number' || typeof claims.v !== 'number' || (claims.d !== undefined && typeof claims.d !== 'string')) {
    throw new TokenError('token_invalid', 'malformed client token');
  }
  const want = createHmac('sha256', projectSecret(master, claims.p, claims.v)).update(payload).digest();
  const got = Buffer.from(body.slice(dot + 1), 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new TokenError('token_invalid', 'client token signature does not match');
  if (claims.e * 1000 <= now) throw new TokenError('token_expired', 'client token expired: ask your server for a new one');
  return { project: claims.p, exp: claims.e, version: claims.v, ...(claims.d !== undefined ? { distinctId: claims.d } : {}) };
}
