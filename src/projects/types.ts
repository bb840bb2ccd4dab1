/**
 * Projects and their keys: who may send and read usage, and where a project's PostHog events go.
 */

/** What a key may do: send usage (and mint client tokens), read it, or manage projects and keys. */
export type Scope = 'ingest' | 'query' | 'admin';
export const SCOPES: readonly Scope[] = ['ingest', 'query', 'admin'];

/** What ingest does with the client IP before anything is queued. */
export type IpPolicy = 'keep' | 'anonymise' | 'drop';

export interface Project {
  /** Lowercase letters, digits and `-`, 1–40 characters; part of every counter key. */
  id: string;
  /** Where this project's batch events, sampled events and forwarded `$` events go; unset: the deployment's. */
  posthog?: { key: string; host: string };
  ip: IpPolicy;
  /** Calls per second and burst; unset: unlimited (the stage throttle still applies). */
  rate?: { perSecond: number; burst: number };
  /** Calls per calendar month (UTC); unset: none. */
  monthlyQuota?: number;
  /** Browser origins allowed to call (CORS), e.g. `https://app.example.com`. */
  origins: string[];
  /** Version of the secret client tokens are signed with; bumping it invalidates every token of the project. */
  tokenVersion: number;
  createdAt: number;
  updatedAt: number;
}

/** A key as stored: never the key itself, only its hash. */
export interface KeyRecord {
  id: string;
  project: string;
  name: string;
  scopes: Scope[];
  /** sha256 of the key, base64url. */
  hash: string;
  /** The key's first characters, to recognise it in a list (`tk_AbC1…`). */
  prefix: string;
  createdAt: number;
  /** Set when rotated (the grace period's end) or revoked (the revocation time): unusable from then on. */
  expiresAt?: number;
  revoked?: boolean;
  lastUsedAt?: number;
}

/** Who a request is, once its key or token checked out. */
export interface Principal {
  project: string;
  scopes: readonly Scope[];
  /** The key's id, or `token` for a client token. */
  keyId: string;
  /** A client token scoped to one distinct id: every event must be for it. */
  distinctId?: string;
}
