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

export class RateLimiter {
  private readonly local = new Map<string, { tokens: number; until: number }>();

  constructor(
    private readonly store: Pick<ProjectStore, 'leaseTokens'>,
    private readonly now: () => number = Date.now,
  ) {}

  async admit(project: Project, calls: number): Promise<RateDecision> {
    const r = project.rate;
    if (!r) return { admitted: true, retryAfterSeconds: 0 };
    const wait = (missing: number) => Math.max(1, Math.ceil(missing / r.perSecond));
    if (calls > r.burst) return { admitted: false, retryAfterSeconds: wait(calls) };
    const t = this.now();
    const held = this.local.get(project.id);
    const have = held && held.until > t ? held.tokens : 0;
    if (have >= calls) {
      held!.tokens -= calls;
      return { admitted: true, retryAfterSeconds: 0 };
    }
    const chunk = Math.min(r.burst, Math.max(calls - have, Math.ceil(r.perSecond / 10)));
    const got = await this.store.leaseTokens(project.id, chunk, r.perSecond, r.burst, t);
    const total = have + got;
    if (total < calls) {
      this.local.set(project.id, { tokens: total, until: t + LEASE_MS });
      return { admitted: false, retryAfterSeconds: wait(calls - total) };
    }
    this.local.set(project.id, { tokens: total - calls, until: t + LEASE_MS });
    return { admitted: true, retryAfterSeconds: 0 };
  }
}

export class QuotaChecker {
  private readonly seen = new Map<string, { calls: number; at: number }>();

  constructor(
    /** The project's calls this calendar month. */
    private readonly monthCalls: (project: string) => Promise<number>,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = 60_000,
  ) {}

  /** Whether the project has used its monthly quota (read at most once per `maxAgeMs`). */
  async exceeded(project: Project): Promise<boolean> {
    if (project.monthlyQuota === undefined) return false;
    const t = this.now();
    let s = this.seen.get(project.id);
    if (!s || t - s.at >= this.maxAgeMs || new Date(s.at).getUTCMonth() !== new Date(t).getUTCMonth()) {
      s = { calls: await this.monthCalls(project.id), at: t };
      this.seen.set(project.id, s);
    }
    return s.calls >= project.monthlyQuota;
  }
}

export interface EnforceOptions {
  rate?: Pick<RateLimiter, 'admit'>;
  quota?: Pick<QuotaChecker, 'exceeded'>;
  /** Bound of one limit check's DynamoDB work (a lease, a month total), within the invocation's deadline. */
  timeoutMs: number;
  /**
   * Told when a limit could not be checked (DynamoDB unreachable or slow): the request is then admitted.
   * A database in the capture path must never make ingestion lag or drop events; the limits are a
   * protection, not the thing counted.
   */
  onUnavailable?: (limit: 'rate' | 'quota', err: unknown) => void;
}

/**
 * The project's limits for a request of `calls` calls, checked before anything is queued: the monthly
 * quota first (a request it refuses takes no rate tokens), then the rate. Throws a {@link LimitError}
 * (429 `quota_exceeded`, or `rate_limited` with `Retry-After`).
 */
export async function enforceLimits(project: Project, calls: number, o: EnforceOptions): Promise<void> {
  const bounded = <T>(fn: () => Promise<T>): Promise<T> => {
    // The DynamoDB clients honour the deadline; the timer bounds the check whatever it does.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceededError(`limit check took over ${o.timeoutMs} ms`)), o.timeoutMs);
    });
    return Promise.race([withDeadline(Date.now() + o.timeoutMs, fn), late]).finally(() => clearTimeout(timer));
  };
  if (o.quota && project.monthlyQuota !== undefined) {
    let over = false;
    try {
      over = await bounded(() => o.quota!.exceeded(project));
    } catch (err) {
      o.onUnavailable?.('quota', err);
    }
    if (over) throw new LimitError('quota_exceeded', `project ${project.id} has used its monthly quota of ${project.monthlyQuota} calls; nothing was accepted`);
  }
  if (o.rate && project.rate) {
    let d: RateDecision = { admitted: true, retryAfterSeconds: 0 };
    try {
      d = await bounded(() => o.rate!.admit(project, calls));
    } catch (err) {
      o.onUnavailable?.('rate', err);
    }
    if (!d.admitted) {
      const why = calls > project.rate.burst ? `${calls} calls in one request exceed the burst of ${project.rate.burst}` : `over ${project.rate.perSecond} calls/s (burst ${project.rate.burst})`;
      throw new LimitError('rate_limited', `project ${project.id} is rate limited: ${why}; nothing was accepted, retry after ${d.retryAfterSeconds} s`, d.retryAfterSeconds);
    }
  }
}
