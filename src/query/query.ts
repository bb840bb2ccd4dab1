/**
 * Usage queries: calls per window for one event, for one user or across all users.
 */
import * as z from 'zod/mini';
import { BadRequestError } from '../errors';
import { counterPk, windowSk, windowStart, WINDOW_MS } from '../store/keys';
import type { SeriesPoint, UsageStore } from '../store/types';
import type { Granularity } from '../types';

/** The most windows one answer may cover (a year of hours, two weeks of minutes). */
export const MAX_WINDOWS = 10_000;

const time = z.pipe(
  z.string(),
  z.transform((v: string, ctx) => {
    const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) ctx.issues.push({ code: 'custom', message: 'must be ISO-8601 or epoch milliseconds', input: v });
    return ms;
  }),
);

export const usageQuerySchema = z.object({
  event: z.string({ error: 'is required' }).check(z.minLength(1, 'is required'), z.maxLength(200)),
  distinctId: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  granularity: z._default(z.enum(['minute', 'hour', 'day'], { error: 'must be minute, hour or day' }), 'hour'),
  from: z.optional(time),
  to: z.optional(time),
});

export interface UsageAnswer {
  event: string;
  distinctId: string | null;
  granularity: Granularity;
  from: string;
  to: string;
  total: number;
  series: SeriesPoint[];
}

/** Validates the query string and reads the series; windows without calls are left out. */
export async function queryUsage(store: UsageStore, params: Record<string, string | undefined>, now = Date.now()): Promise<UsageAnswer> {
  const r = z.safeParse(usageQuerySchema, params);
  if (!r.success) {
    throw new BadRequestError(
      'invalid query',
      r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  const q = r.data;
  const to = q.to ?? now;
  const from = q.from ?? to - 24 * 3_600_000;
  if (from > to) throw new BadRequestError('invalid query', [{ path: 'from', message: 'must not be after to' }]);
  const g = q.granularity;
  const first = windowStart(from, g);
  const last = windowStart(to, g);
  if ((last - first) / WINDOW_MS[g] + 1 > MAX_WINDOWS) {
    throw new BadRequestError('invalid query', [{ path: 'granularity', message: `range covers more than ${MAX_WINDOWS} ${g} windows; use a coarser granularity` }]);
  }
  const series = await store.readSeries(counterPk(g, q.event, q.distinctId), windowSk(first), windowSk(last));
  return {
    event: q.event,
    distinctId: q.distinctId ?? null,
    granularity: g,
    from: windowSk(first),
    to: windowSk(last),
    total: series.reduce((s, p) => s + p.calls, 0),
    series,
  };
}
