/**
 * Who a request is: the one check every route makes, in this order (PostHog's capture does the same:
 * shape first, no database; then a cached lookup):
 *
 * 1. **Shape.** Blank, a `tk_` key of the wrong length or alphabet, non-ASCII, oversized → 401 at once,
 *    without any lookup.
 * 2. **Client token** (`tt_…`): signature and expiry checked in memory (src/projects/tokens.ts); the
 *    project (cached) must still be on the token's secret version. Expired → 401 `token_expired`.
 * 3. **Key**: its sha256 looked up through a bounded cache ({@link LookupCache}: 30 s, so a revocation
 *    reaches every warm instance within 30 s; misses cached too). Unknown, revoked, or past its
 *    rotation's grace → 401. The store unreachable: a key cached in the last 10 minutes keeps working;
 *    any other → 503 `auth_unavailable`, never a silent 2xx.
 *
 * Then the route's scope is checked (→ 403; a client token carries `ingest` only, and is refused for any
 * other scope before it is verified). The hash is compared by the store's exact-key lookup and
 * the token's signature with `timingSafeEqual`: nothing about a key leaks through timing.
 */
import { ForbiddenError, HttpError, UnauthorizedError } from '../errors';
import { LookupCache, LookupUnavailableError, type LookupCacheOptions } from './cache';
import { credentialShape, hashKey } from './keys';
import type { ProjectStore } from './store';
import { TokenError, verifyToken } from './tokens';
import type { KeyRecord, Principal, Project, Scope } from './types';

export interface AuthenticatorOptions {
  store: Pick<ProjectStore, 'getKeyByHash' | 'getProject' | 'touchKey'>;
  /** Master secret client tokens are signed with (src/projects/tokens.ts); unset: tokens are refused. */
  tokenSecret?: Buffer;
  cache?: Partial<LookupCacheOptions>;
  /** A key's last use is recorded at most this often. */
  touchEveryMs?: number;
  now?: () => number;
}

export interface Authenticated {
  principal: Principal;
  project: Project;
}

/** 503: the key store is unreachable and the key is not known from a recent lookup. */
export class AuthUnavailableError extends HttpError {
  constructor() {
    super('auth_unavailable', 'keys cannot be checked right now; nothing was accepted, retry', undefined, { 'retry-after': '1' });
  }
}

export class Authenticator {
  private readonly keys: LookupCache<KeyRecord>;
  readonly projects: LookupCache<Project>;
  private readonly touched = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly o: AuthenticatorOptions) {
    this.now = o.now ?? Date.now;
    const cache = { now: this.now, ...o.cache };
    this.keys = new LookupCache((hash) => o.store.getKeyByHash(hash), cache);
    this.projects = new LookupCache((id) => o.store.getProject(id), cache);
  }

  /** The principal of `credential` if it may use a route needing `scope`; throws an {@link HttpError} otherwise. */
  async authenticate(credential: string | undefined, scope: Scope): Promise<Authenticated> {
    const shape = credentialShape(credential);
    if (shape === undefined) throw new UnauthorizedError(credential ? 'malformed API key' : 'missing API key');
    // A client token only ever sends usage: refused for anything else before it is even verified.
    if (shape === 'token' && scope !== 'ingest') throw new ForbiddenError(`a client token may only send usage; ${scope === 'query' ? 'read usage' : 'manage projects'} with a secret key`);
    if (shape !== 'token') {
      // The hot path: a key and its project both fresh in the cache, answered without a promise chain.
      const a = this.cachedKey(credential!);
      if (a) return this.allowed(a, scope);
    }
    try {
      return this.allowed(shape === 'token' ? await this.fromToken(credential!) : await this.fromKey(credential!), scope);
    } catch (err) {
      if (err instanceof LookupUnavailableError) throw new AuthUnavailableError();
      throw err;
    }
  }

  private allowed(a: Authenticated, scope: Scope): Authenticated {
    const scopes = a.principal.scopes;
    if (!scopes.includes(scope) && !scopes.includes('admin')) throw new ForbiddenError(`this key may not ${scope === 'query' ? 'read usage' : scope === 'ingest' ? 'send usage' : 'manage projects'}`);
    return a;
  }

  /** A valid key whose record and project are both fresh in the cache; `undefined` when a lookup is needed (or the key is refused: the slow path says why). */
  private cachedKey(key: string): Authenticated | undefined {
    const k = this.keys.peek(hashKey(key))?.value;
    if (!k) return undefined;
    const now = this.now();
    if (k.revoked || (k.expiresAt !== undefined && k.expiresAt <= now)) return undefined;
    const project = this.projects.peek(k.project)?.value;
    if (!project) return undefined;
    this.touch(k, now);
    return { principal: { project: project.id, scopes: k.scopes, keyId: k.id }, project };
  }

  private async fromToken(token: string): Promise<Authenticated> {
    if (!this.o.tokenSecret) throw new UnauthorizedError('client tokens are not enabled');
    let claims;
    try {
      claims = verifyToken(token, this.o.tokenSecret, this.now());
    } catch (err) {
      if (err instanceof TokenError && err.reason === 'token_expired') throw new HttpError('token_expired', err.message, undefined, { 'www-authenticate': 'Bearer error="invalid_token"' });
      throw new UnauthorizedError((err as Error).message);
    }
    const project = await this.projects.get(claims.project);
    if (!project || project.tokenVersion !== claims.version) throw new UnauthorizedError('client token revoked');
    return { principal: { project: project.id, scopes: ['ingest'], keyId: 'token', ...(claims.distinctId !== undefined ? { distinctId: claims.distinctId } : {}) }, project };
  }

  private async fromKey(key: string): Promise<Authenticated> {
    const k = await this.keys.get(hashKey(key));
    const now = this.now();
    if (!k || k.revoked || (k.expiresAt !== undefined && k.expiresAt <= now)) throw new UnauthorizedError(k ? 'API key revoked or expired' : 'unknown API key');
    const project = await this.projects.get(k.project);
    if (!project) throw new UnauthorizedError('the key\'s project no longer exists');
    this.touch(k, now);
    return { principal: { project: project.id, scopes: k.scopes, keyId: k.id }, project };
  }

  /** Records a key's use at most once per `touchEveryMs`, in the background (never on the request's time). */
  private touch(k: KeyRecord, now: number): void {
    const every = this.o.touchEveryMs ?? 5 * 60_000;
    if (now - (this.touched.get(k.id) ?? 0) < every) return;
    this.touched.set(k.id, now);
    if (this.touched.size > 10_000) this.touched.clear();
    void this.o.store.touchKey(k, now).catch(() => undefined);
  }
}
