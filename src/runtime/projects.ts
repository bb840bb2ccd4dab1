/**
 * Projects and keys as ingest, query and `npm start` use them, built in one place: the store over the
 * table, the cached {@link Authenticator}, the origin rules (CORS), the rate limiter and the quota
 * checker, and the import of the configured keys (`TALLY_API_KEYS`, the local key) into the `default`
 * project.
 */
import { OriginRules } from '../http/cors';
import { ProjectAdmin } from '../projects/admin';
import { Authenticator } from '../projects/auth';
import type { LookupCacheOptions } from '../projects/cache';
import { QuotaChecker, RateLimiter } from '../projects/limits';
import { ProjectStore } from '../projects/store';
import type { DynamoApi } from '../store/dynamo-api';
import type { ReadStore } from '../store/types';

export type ProjectLog = (level: 'warn' | 'error', message: string, extra?: Record<string, unknown>) => void;

export interface ProjectServicesOptions {
  db: DynamoApi;
  tableName: string;
  /**
   * The counters, for the monthly quota (the month total `GET /v1/usage/events` answers), or a function
   * that loads them on the first quota check (ingest: the store's code stays out of its cold start);
   * unset: no quota.
   */
  usage?: ReadStore | (() => Promise<ReadStore>);
  /** `TALLY_CORS_ORIGINS`: origins every project allows on top of its own. */
  deploymentOrigins: readonly string[];
  /** `TALLY_TOKEN_SECRET`; unset: client tokens are refused and `POST /v1/tokens` answers 503. */
  tokenSecret?: string;
  /** Key and project cache (default: 30 s, so a revocation reaches every warm instance within 30 s). */
  cache?: Partial<LookupCacheOptions>;
  /** How old a project's month total may be before the quota reads it again (default one minute). */
  quotaMaxAgeMs?: number;
  log?: ProjectLog;
  now?: () => number;
}

/** What ingest and query take: spread into their handler deps. */
export interface ProjectServices {
  store: ProjectStore;
  admin: ProjectAdmin;
  auth: Authenticator;
  cors: OriginRules;
  rate: RateLimiter;
  quota?: QuotaChecker;
  tokenSecret?: Buffer;
}

/**
 * A project's counted calls this calendar month (UTC), fresh: what its quota is checked against. The
 * query code is a chunk loaded on the first quota check, so an ingest cold start does not pay for it.
 */
export async function monthCalls(usage: ReadStore, project: string, now = Date.now()): Promise<number> {
  const { queryEvents } = await import('../query/events');
  const a = await queryEvents(usage, {}, now, project);
  return a.events.reduce((sum, e) => sum + e.calls, 0);
}

export function createProjectServices(o: ProjectServicesOptions): ProjectServices {
  const now = o.now ?? Date.now;
  const store = new ProjectStore(o.db, o.tableName);
  let usage: Promise<ReadStore> | undefined;
  const usageStore = (): Promise<ReadStore> => (usage ??= typeof o.usage === 'function' ? o.usage().catch((err: unknown) => ((usage = undefined), Promise.reject(err))) : Promise.resolve(o.usage!));
  return {
    store,
    admin: new ProjectAdmin(store, now),
    auth: new Authenticator({ store, tokenSecret: o.tokenSecret ? Buffer.from(o.tokenSecret, 'utf8') : undefined, cache: o.cache, now }),
    cors: new OriginRules(o.deploymentOrigins, {
      projects: () => store.listProjects(),
      onError: (err) => o.log?.('warn', 'the projects\' origins could not be read; preflights use the last ones read', { error: String(err) }),
    }),
    rate: new RateLimiter(store, now),
    ...(o.usage ? { quota: new QuotaChecker(async (project) => monthCalls(await usageStore(), project, now()), now, o.quotaMaxAgeMs) } : {}),
    ...(o.tokenSecret ? { tokenSecret: Buffer.from(o.tokenSecret, 'utf8') } : {}),
  };
}

/**
 * The configured keys, imported into the `default` project ({@link ProjectAdmin.importConfiguredKeys}):
 * at cold start, and — if DynamoDB could not be reached then — again at most once a minute, in the
 * background, until it worked. Never rejects: until then keys already in the store work, others get 503.
 */
export class ConfiguredKeysImport {
  private done = false;
  private nextAttempt = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly admin: ProjectAdmin,
    private readonly keys: readonly string[],
    private readonly log?: ProjectLog,
    private readonly retryMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  get imported(): boolean {
    return this.done;
  }

  /** Imports unless already done or tried less than `retryMs` ago. */
  run(): Promise<void> {
    if (this.done || this.now() < this.nextAttempt) return this.running ?? Promise.resolve();
    this.running ??= (async () => {
      this.nextAttempt = this.now() + this.retryMs;
      try {
        await this.admin.importConfiguredKeys(this.keys);
        this.done = true;
      } catch (err) {
        this.log?.('error', `the configured keys could not be imported into project default; retrying in ${Math.round(this.retryMs / 1000)} s`, { error: err instanceof Error ? err.message : String(err) });
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** `handler`, retrying a failed import in the background before each request until it worked. */
  wrap<A extends unknown[], R>(handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return (...args) => {
      if (!this.done) void this.run();
      return handler(...args);
    };
  }
}
