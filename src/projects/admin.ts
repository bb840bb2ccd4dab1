/**
 * Managing projects and keys: what the CLI (`npm run tally -- …`) does, against `npm start` or a
 * deployed stack alike. Every input is validated here (zod) with a message naming the bad field, and
 * nothing is written unless all of it is valid.
 */
import * as z from 'zod/mini';
import { DEFAULT_PROJECT } from '../types';
import { hashKey, newKeyId, newSecretKey } from './keys';
import { ProjectStoreError, type ProjectStore } from './store';
import { SCOPES, type KeyRecord, type Project, type Scope } from './types';

/** A bad argument: the CLI prints it and exits non-zero, having changed nothing. */
export class AdminInputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'AdminInputError';
  }
}

const origin = z.string().check(
  z.refine((s: string) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === s;
    } catch {
      return false;
    }
  }, 'an origin is scheme://host[:port], nothing after it (e.g. https://app.example.com)'),
);

export const projectSettingsSchema = z.object({
  posthog: z.optional(
    z.object({
      key: z.string().check(z.regex(/^phc_[A-Za-z0-9]{10,100}$/, 'a PostHog project key starts with phc_')),
      host: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    }),
  ),
  ip: z.optional(z.enum(['keep', 'anonymise', 'drop'], { error: 'must be keep, anonymise or drop' })),
  rate: z.optional(
    z.object({
      perSecond: z.number().check(z.int(), z.gte(1, 'must be at least 1'), z.lte(1_000_000)),
      burst: z.number().check(z.int(), z.gte(1, 'must be at least 1'), z.lte(10_000_000)),
    }),
  ),
  monthlyQuota: z.optional(z.number().check(z.int(), z.gte(1, 'must be at least 1'))),
  origins: z.optional(z.array(origin).check(z.maxLength(50, 'at most 50 origins'))),
});
export type ProjectSettings = z.infer<typeof projectSettingsSchema>;

const projectId = z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'project names are 1–40 lowercase letters, digits and -, starting with a letter or digit'));

function check<S extends z.ZodMiniType>(schema: S, v: unknown, prefix = ''): z.infer<S> {
  const r = z.safeParse(schema, v);
  if (!r.success) throw new AdminInputError(r.error.issues.map((i) => `${[prefix, ...i.path].filter((x) => x !== '').join('.') || 'value'}: ${i.message}`));
  return r.data;
}

export function parseScopes(s: string | undefined): Scope[] {
  const scopes = (s ?? 'ingest').split(',').map((x) => x.trim()).filter(Boolean);
  const bad = scopes.filter((x) => !SCOPES.includes(x as Scope));
  if (bad.length || scopes.length === 0) throw new AdminInputError([`scopes: ${bad.join(', ') || '(none)'} — choose from ${SCOPES.join(', ')}`]);
  return [...new Set(scopes)] as Scope[];
}

export class ProjectAdmin {
  constructor(
    readonly store: ProjectStore,
    private readonly now: () => number = Date.now,
  ) {}

  async createProject(id: string, settings: ProjectSettings = {}): Promise<Project> {
    check(projectId, id, 'name');
    const s = check(projectSettingsSchema, settings);
    if (s.rate && s.rate.burst < s.rate.perSecond) throw new AdminInputError(['rate.burst: must be at least the rate']);
    const t = this.now();
    const p: Project = { id, ip: s.ip ?? 'keep', origins: s.origins ?? [], tokenVersion: 1, createdAt: t, updatedAt: t, ...(s.posthog ? { posthog: s.posthog } : {}), ...(s.rate ? { rate: s.rate } : {}), ...(s.monthlyQuota ? { monthlyQuota: s.monthlyQuota } : {}) };
    try {
      await this.store.createProject(p);
    } catch (err) {
      if (err instanceof ProjectStoreError) throw new AdminInputError([`name: ${err.message}`]);
      throw err;
    }
    return p;
  }

  async getProject(id: string): Promise<Project> {
    const p = await this.store.getProject(id);
    if (!p) throw new AdminInputError([`name: no project ${id}`]);
    return p;
  }

  /** Changes the given settings; `null` removes one (`rate`, `monthlyQuota`, `posthog`). `revokeTokens` bumps the token version. */
  async updateProject(id: string, changes: { [K in keyof ProjectSettings]?: ProjectSettings[K] | null } & { revokeTokens?: boolean }): Promise<Project> {
    const p = await this.getProject(id);
    const { revokeTokens, ...rest } = changes;
    const set = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null && v !== undefined));
    const s = check(projectSettingsSchema, set);
    const next: Project = { ...p, ...s, updatedAt: this.now() } as Project;
    for (const [k, v] of Object.entries(rest)) if (v === null) delete (next as unknown as Record<string, unknown>)[k];
    if (next.rate && next.rate.burst < next.rate.perSecond) throw new AdminInputError(['rate.burst: must be at least the rate']);
    if (revokeTokens) next.tokenVersion = p.tokenVersion + 1;
    await this.store.putProject(next);
    return next;
  }

  listProjects(): Promise<Project[]> {
    return this.store.listProjects();
  }

  /** A new secret key: returned once, stored only as its hash. */
  async createKey(project: string, o: { name?: string; scopes?: Scope[] } = {}): Promise<{ key: string; record: KeyRecord }> {
    await this.getProject(project);
    const key = newSecretKey();
    const record: KeyRecord = { id: newKeyId(), project, name: o.name ?? '', scopes: o.scopes ?? ['ingest'], hash: hashKey(key), prefix: key.slice(0, 7), createdAt: this.now() };
    await this.store.putKey(record);
    return { key, record };
  }

  listKeys(project: string): Promise<KeyRecord[]> {
    return this.store.listKeys(project);
  }

  /** A new key with the same project, name and scopes; the old one keeps working until `graceMs` from now. */
  async rotateKey(id: string, graceMs: number): Promise<{ key: string; record: KeyRecord; oldExpiresAt: number }> {
    if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > 90 * 86_400_000) throw new AdminInputError(['grace: from 0 to 90 days']);
    const old = await this.findKey(id);
    if (old.revoked || (old.expiresAt !== undefined && old.expiresAt <= this.now())) throw new AdminInputError([`${id}: revoked or expired, nothing to rotate`]);
    const fresh = await this.createKey(old.project, { name: old.name, scopes: old.scopes });
    const oldExpiresAt = this.now() + graceMs;
    await this.store.expireKey(old, oldExpiresAt, false);
    return { ...fresh, oldExpiresAt };
  }

  async revokeKey(id: string): Promise<KeyRecord> {
    const k = await this.findKey(id);
    await this.store.expireKey(k, this.now(), true);
    return { ...k, expiresAt: this.now(), revoked: true };
  }

  private async findKey(id: string): Promise<KeyRecord> {
    try {
      return await this.store.findKey(id);
    } catch (err) {
      if (err instanceof ProjectStoreError) throw new AdminInputError([`key: ${err.message}`]);
      throw err;
    }
  }

  /**
   * The configured keys (`TALLY_API_KEYS`, `npm start`'s local key) as keys of the `default` project, on
   * first start: nothing that worked before stops working, and they can be listed, rotated and revoked.
   * A key already imported (or revoked since) is left as it is.
   */
  async importConfiguredKeys(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0; // nothing to import: no DynamoDB call at cold start
    if (!(await this.store.getProject(DEFAULT_PROJECT))) {
      const t = this.now();
      await this.store.createProject({ id: DEFAULT_PROJECT, ip: 'keep', origins: [], tokenVersion: 1, createdAt: t, updatedAt: t }).catch((err: unknown) => {
        if (!(err instanceof ProjectStoreError)) throw err;
      });
    }
    let added = 0;
    for (const [i, key] of keys.entries()) {
      const hash = hashKey(key);
      if (await this.store.getKeyByHash(hash)) continue;
      const record: KeyRecord = { id: `key_configured_${hash.slice(0, 10)}`, project: DEFAULT_PROJECT, name: `configured key ${i + 1}`, scopes: ['ingest', 'query', 'admin'], hash, prefix: key.slice(0, 7), createdAt: this.now() };
      if (await this.store.putKey(record, { ifAbsent: true })) added++;
    }
    return added;
  }
}
