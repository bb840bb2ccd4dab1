/**
 * Keys without a database, for unit tests and the ingest benchmark: the real {@link Authenticator} over
 * an in-memory store holding the given keys as configured keys of project `default` (every scope), as
 * `importConfiguredKeys` makes them. Integration and e2e tests use the DynamoDB store (dynalite) instead.
 */
import { Authenticator } from '../../src/projects/auth';
import { hashKey } from '../../src/projects/keys';
import type { ProjectStore } from '../../src/projects/store';
import type { KeyRecord, Project } from '../../src/projects/types';
import { DEFAULT_PROJECT } from '../../src/types';

type Lookup = Pick<ProjectStore, 'getKeyByHash' | 'getProject' | 'touchKey' | 'listProjects' | 'leaseTokens'>;

export const project = (id: string, p: Partial<Project> = {}): Project => ({ id, ip: 'keep', origins: [], tokenVersion: 1, createdAt: 0, updatedAt: 0, ...p });

/** Projects and keys in memory; `leaseTokens` grants everything asked (no rate limit). */
export class MemoryProjectStore implements Lookup {
  readonly keys = new Map<string, KeyRecord>();
  readonly projects = new Map<string, Project>();
  lookups = 0;

  addKey(key: string, o: Partial<KeyRecord> = {}): KeyRecord {
    const r: KeyRecord = { id: `key_${this.keys.size}`, project: DEFAULT_PROJECT, name: '', scopes: ['ingest', 'query', 'admin'], hash: hashKey(key), prefix: key.slice(0, 7), createdAt: 0, ...o };
    this.keys.set(r.hash, r);
    if (!this.projects.has(r.project)) this.projects.set(r.project, project(r.project));
    return r;
  }
  async getKeyByHash(hash: string) {
    this.lookups++;
    return this.keys.get(hash);
  }
  async getProject(id: string) {
    this.lookups++;
    return this.projects.get(id);
  }
  async touchKey() {}
  async listProjects() {
    return [...this.projects.values()];
  }
  async leaseTokens(_p: string, want: number) {
    return want;
  }
}

/** An authenticator that knows `keys` (project `default`, every scope); spread into a handler's deps. */
export function memoryAuth(keys: readonly string[], o: { tokenSecret?: Buffer; now?: () => number } = {}): { auth: Authenticator; keyStore: MemoryProjectStore; tokenSecret?: Buffer } {
  const keyStore = new MemoryProjectStore();
  for (const k of keys) keyStore.addKey(k);
  return { auth: new Authenticator({ store: keyStore, tokenSecret: o.tokenSecret, ...(o.now ? { now: o.now } : {}) }), keyStore, ...(o.tokenSecret ? { tokenSecret: o.tokenSecret } : {}) };
}
