/**
 * Per-project limits, enforced at ingest before anything is queued.
 *
 * **Rate** (calls per second, burst): one token bucket per project in DynamoDB (src/projects/store.ts),
 * leased to each ingest instance in chunks of a tenth of a second's worth. A call is admitted when the
 * instance holds tokens for it; leased tokens not used within a second lapse. So across any number of
 * concurrent instances, no more than `perSecond × t + burst` calls are admitted in any `t` seconds (every
 * token is taken from the shared bucket before it is spent), and fewer may be, by at most one chunk per
 * instance (tokens leased and left to lapse). Cost: one conditional write per lease.
 *
 * **Quota** (calls per calendar month): the project's month total read from the counters (fresh, as
 * `GET /v1/usage/events` answers) at most once a minute per instance; at or over it, calls are refused.
 */
import { LimitError } from '../errors';
import { DeadlineExceededError, withDeadline } from '../util/deadline';
import type { ProjectStore } from './store';
import type { Project } from './types';

/** Tokens leased but unused lapse after this. */
const LEASE_MS = 1000;

export interface RateDecision {
  admitted: boolean;
  /** Seconds to wait before retrying, when refused. */
  retryAfterSeconds: number;
}

const ADMITTED: RateDecision = { admitted: true, retryAfterSeconds: 0 };

export class RateLimiter {
  private readonly local = new Map<string, { tokens: number; until: number }>();

  constructor(
    private readonly store: Pick<ProjectStore, 'leaseTokens'>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The decision from what this instance holds, without I/O: admitted when its tokens cover the calls,
   * refused when the calls exceed the burst; `undefined` when a lease is needed ({@link admit}).
   */
  admitHeld(project: Project, calls: number): RateDecision | undefined {
    const r = project.rate;
    if (!r) return ADMITTED;
    if (calls > r.burst) return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil(calls / r.perSecond)) };
    const held = this.local.get(project.id);
    if (held && held.until > this.now() && held.tokens >= calls) {
      held.tokens -= calls;
      return ADMITTED;
    }
    return undefined;
  }

  async admit(project: Project, calls: number): Promise<RateDecision> {
    const fast = this.admitHeld(project, calls);
    if (fast) return fast;
    const r = project.rate!;
    const wait = (missing: number) => Math.max(1, Math.ceil(missing / r.perSecond));
    const t = this.now();
    const held = this.local.get(project.id);
    const have = held && held.until > t ? held.tokens : 0;
    const chunk = Math.min(r.burst, Math.max(calls - have, Math.ceil(r.perSecond / 10)));
    const got = await this.store.leaseTokens(project.id, chunk, r.perSecond, r.burst, t);
    const total = have + got;
    if (total < calls) {
      this.local.set(project.id, { tokens: total, until: t + LEASE_MS });
      return { admitted: false, retryAfterSeconds: wait(calls - total) };
    }
    this.local.set(project.id, { tokens: total - calls, until: t + LEASE_MS });
    return ADMITTED;
  }
}

/** Start of the next calendar month (UTC) after `t`, epoch ms. */
const nextMonth = (t: number): number => {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
};

export class QuotaChecker {
  /** A project's month total, and until when it may be used (a minute, never past the month's end). */
  private readonly seen = new Map<string, { calls: number; until: number }>();

  constructor(
    /** The project's calls this calendar month. */
    private readonly monthCalls: (project: string) => Promise<number>,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = 60_000,
  ) {}

  /** Whether the project has used its quota, from the total read less than `maxAgeMs` ago; `undefined` when it must be read. */
  known(project: Project): boolean | undefined {
    if (project.monthlyQuota === undefined) return false;
    const s = this.seen.get(project.id);
    return s && this.now() < s.until ? s.calls >= project.monthlyQuota : undefined;
  }

  /** Whether the project has used its monthly quota (read at most once per `maxAgeMs`). */
  async exceeded(project: Project): Promise<boolean> {
    const k = this.known(project);
    if (k !== undefined) return k;
    const t = this.now();
    const calls = await this.monthCalls(project.id);
    this.seen.set(project.id, { calls, until: Math.min(t + this.maxAgeMs, nextMonth(t)) });
    return calls >= project.monthlyQuota!;
  }
}

export interface EnforceOptions {
  /** `admitHeld`/`known`, when present, decide without I/O (the usual case); the rest is bounded. */
  rate?: Pick<RateLimiter, 'admit'> & Partial<Pick<RateLimiter, 'admitHeld'>>;
  quota?: Pick<QuotaChecker, 'exceeded'> & Partial<Pick<QuotaChecker, 'known'>>;
  /** Bound of one limit check's DynamoDB work (a lease, a month total), within the invocation's deadline. */
  timeoutMs: number;
  /**
   * Told when a limit could not be checked (DynamoDB unreachable or slow): the request is then admitted.
   * A database in the capture path must never make ingestion lag or drop events; the limits are a
   * protection, not the thing counted.
   */
  onUnavailable?: (limit: 'rate' | 'quota', err: unknown) => void;
}

/** The work of a limit check that needs DynamoDB, bounded: the clients honour the deadline, the timer bounds the rest. */
function bounded<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`limit check took over ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([withDeadline(Date.now() + timeoutMs, fn), late]).finally(() => clearTimeout(timer));
}

const quotaError = (project: Project) => new LimitError('quota_exceeded', `project ${project.id} has used its monthly quota of ${project.monthlyQuota} calls; nothing was accepted`);

function rateError(project: Project, calls: number, d: RateDecision): LimitError {
  const r = project.rate!;
  const why = calls > r.burst ? `${calls} calls in one request exceed the burst of ${r.burst}` : `over ${r.perSecond} calls/s (burst ${r.burst})`;
  return new LimitError('rate_limited', `project ${project.id} is rate limited: ${why}; nothing was accepted, retry after ${d.retryAfterSeconds} s`, d.retryAfterSeconds);
}

function enforceRate(project: Project, calls: number, o: EnforceOptions): Promise<void> | undefined {
  if (!o.rate || !project.rate) return undefined;
  const held = o.rate.admitHeld?.(project, calls);
  if (held !== undefined) {
    if (!held.admitted) throw rateError(project, calls, held);
    return undefined;
  }
  return bounded(o.timeoutMs, () => o.rate!.admit(project, calls)).then(
    (d) => {
      if (!d.admitted) throw rateError(project, calls, d);
    },
    (err: unknown) => o.onUnavailable?.('rate', err),
  );
}

/**
 * The project's limits for a request of `calls` calls, checked before anything is queued: the monthly
 * quota first (a request it refuses takes no rate tokens), then the rate. Throws (or rejects with) a
 * {@link LimitError}: 429 `quota_exceeded`, or `rate_limited` with `Retry-After`. Synchronous — no
 * promise at all — when both are decided from memory (a fresh month total, held rate tokens): the usual
 * case; `undefined` then.
 */
export function enforceLimits(project: Project, calls: number, o: EnforceOptions): Promise<void> | undefined {
  if (!o.quota || project.monthlyQuota === undefined) return enforceRate(project, calls, o);
  const known = o.quota.known?.(project);
  if (known === true) throw quotaError(project);
  if (known === false) return enforceRate(project, calls, o);
  return bounded(o.timeoutMs, () => o.quota!.exceeded(project)).then(
    (over) => {
      if (over) throw quotaError(project);
      return enforceRate(project, calls, o);
    },
    (err: unknown) => {
      o.onUnavailable?.('quota', err);
      return enforceRate(project, calls, o);
    },
  );
}
