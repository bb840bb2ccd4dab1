/**
 * `GET /v1/usage/users`: the billing question — calls per distinct id of one event over a range of
 * whole days or months, largest first, paginated, as JSON or CSV. Read from the per-user month items
 * the roll-up maintains (one Query per month and bucket, never a scan), plus the committed deltas not
 * rolled up yet, so the answer is as fresh and exact as `GET /v1/usage`.
 */
import * as z from 'zod/mini';
import { dayAttr, dec, MONTH_BUCKETS, parseDimsKey, splitCounterSk, userMonthPk, allShards, TOTALS_SHARD } from '../store/keys';
import type { CounterItem, ReadStore } from '../store/types';
import { DEFAULT_PROJECT } from '../types';
import { mapLimit } from '../util/concurrency';
import { digest } from '../util/ids';
import { iso, windowEnd, windowsBetween, windowStart } from '../windows';
import { freshRows, withStableStates } from './fresh';
import { dimensionFilters, dimsMatch, invalid, itemKeyOf, parseRange, type QueryConfig, timeParam } from './query';


/** Rows per page: default and most. */
export const BREAKDOWN_LIMITS = { default: 100, max: 10_000 } as const;

export const breakdownSchema = z.object({
  event: z.string({ error: 'is required' }).check(z.minLength(1, 'is required'), z.maxLength(200)),
  granularity: z._default(z.enum(['day', 'month'], { error: 'must be day or month' }), 'month'),
  from: z.optional(timeParam),
  to: z.optional(timeParam),
  limit: z._default(
    z.pipe(
      z.string(),
      z.transform((v: string, ctx) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > BREAKDOWN_LIMITS.max) ctx.issues.push({ code: 'custom', message: `must be an integer from 1 to ${BREAKDOWN_LIMITS.max}`, input: v });
        return n;
      }),
    ),
    BREAKDOWN_LIMITS.default,
  ),
  cursor: z.optional(z.string()),
  format: z._default(z.enum(['json', 'csv'], { error: 'must be json or csv' }), 'json'),
  groupBy: z.optional(z.string()),
});

export interface BreakdownRow {
  distinctId: string;
  calls: number;
  /** The `groupBy` dimension's value, when grouping. */
  [dimension: string]: string | number;
}

export interface BreakdownAnswer {
  event: string;
  granularity: 'day' | 'month';
  from: string;
  /** End of the range, exclusive. */
  to: string;
  dimensions: Record<string, string>;
  groupBy: string | null;
  /** Calls of every row, and how many rows there are (all pages). */
  total: number;
  rows: number;
  users: BreakdownRow[];
  nextCursor: string | null;
}

const encodeCursor = (offset: number, sig: string): string => Buffer.from(JSON.stringify({ o: offset, s: sig })).toString('base64url');
function decodeCursor(cursor: string, sig: string): number {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown; s?: unknown };
    if (typeof c.o === 'number' && Number.isInteger(c.o) && c.o >= 0 && c.s === sig) return c.o;
  } catch {
    /* below */
  }
  throw invalid([{ path: 'cursor', message: 'not a cursor of this query (pass nextCursor from the previous page, with the same parameters)' }]);
}

export async function queryBreakdown(store: ReadStore, params: Record<string, string | undefined>, cfg: QueryConfig, now = Date.now(), project = DEFAULT_PROJECT): Promise<BreakdownAnswer> {
  const r = z.safeParse(breakdownSchema, params);
  if (!r.success) throw invalid(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const q = r.data;
  const g = q.granularity;
  const filters = dimensionFilters(params, cfg.dimensions);
  const groupIndex = q.groupBy === undefined ? -1 : cfg.dimensions.indexOf(q.groupBy);
  if (q.groupBy !== undefined && groupIndex < 0) throw invalid([{ path: 'groupBy', message: cfg.dimensions.length ? `unknown dimension; configured: ${cfg.dimensions.join(', ')}` : 'no dimensions are configured (TALLY_DIMENSIONS)' }]);
  // Default range: the current month (or the last 30 days by day).
  const monthStart = windowStart(now, 'month');
  const { first, last } = parseRange({ from: q.from ?? (g === 'month' ? monthStart : now - 29 * 86_400_000), to: q.to }, g, now);
  const end = windowEnd(last, g);

  const sums = await withStableStates(store, allShards(cfg.shards).filter((s) => s !== TOTALS_SHARD), async (states) => {
    const months = windowsBetween(first, end - 1, 'month');
    const parts = await mapLimit(
      months.flatMap((m) => Array.from({ length: MONTH_BUCKETS }, (_, b) => [m, b] as const)),
      8,
      async ([m, b]) => (await store.queryAll(userMonthPk(project, q.event, m, b))).map((item) => ({ item, month: m })),
    );
    const byKey = new Map<string, CounterItem>();
    const sums = new Map<string, { distinctId: string; group: string; calls: number }>();
    const addTo = (distinctId: string, dims: string | undefined, calls: number): void => {
      const group = groupIndex >= 0 && dims !== undefined ? (parseDimsKey(dims)[groupIndex] ?? '') : '';
      const k = `${distinctId.length}:${distinctId}${group}`;
      const s = sums.get(k);
      if (s) s.calls += calls;
      else sums.set(k, { distinctId, group, calls });
    };
    for (const { item, month } of parts.flat()) {
      byKey.set(`${item.pk}\u0000${item.sk}`, item);
      const { head, dims } = splitCounterSk(item.sk);
      if (!dimsMatch(dims, filters)) continue;
      const whole = month >= first && windowEnd(month, 'month') <= end;
      let calls = 0;
      if (whole) calls = item.values.n ?? 0;
      else for (let day = 1; day <= 31; day++) {
        const t = month + (day - 1) * 86_400_000;
        if (t >= first && t < end) calls += item.values[dayAttr(day)] ?? 0;
      }
      if (calls > 0) addTo(dec(head), dims, calls);
    }
    await mapLimit([...states.values()], 4, async (st) => {
      const fresh = await freshRows(store, st, (row) => row.project === project && row.event === q.event && row.slot >= first && row.slot < end && dimsMatch(row.dims, filters));
      for (const f of fresh) {
        if (f.inUnit) {
          const k = itemKeyOf(f.row, project, false);
          if ((byKey.get(`${k.pk}\u0000${k.sk}`)?.values[f.inUnit.guard] ?? 0) >= f.inUnit.seq) continue;
        }
        addTo(f.row.distinctId, f.row.dims, f.row.calls);
      }
    });
    return sums;
  });

  const all = [...sums.values()].sort((a, b) => b.calls - a.calls || (a.distinctId < b.distinctId ? -1 : a.distinctId > b.distinctId ? 1 : a.group < b.group ? -1 : 1));
  const sig = digest(JSON.stringify([project, q.event, g, first, last, [...filters], q.groupBy ?? null])).slice(0, 12);
  const offset = q.cursor === undefined ? 0 : decodeCursor(q.cursor, sig);
  const page = all.slice(offset, offset + q.limit);
  return {
    event: q.event,
    granularity: g,
    from: iso(first),
    to: iso(end),
    dimensions: Object.fromEntries([...filters].map(([i, v]) => [cfg.dimensions[i]!, v])),
    groupBy: q.groupBy ?? null,
    total: all.reduce((s, x) => s + x.calls, 0),
    rows: all.length,
    users: page.map((x) => (q.groupBy === undefined ? { distinctId: x.distinctId, calls: x.calls } : { distinctId: x.distinctId, [q.groupBy]: x.group, calls: x.calls })),
    nextCursor: offset + q.limit < all.length ? encodeCursor(offset + q.limit, sig) : null,
  };
}

/** RFC 4180 CSV of a breakdown page: `distinct_id[,<groupBy>],calls`. */
export function breakdownCsv(a: BreakdownAnswer): string {
  const cell = (v: string | number): string => {
    const s = String(v);
    // Quote what needs it, and defuse spreadsheet formulas (a distinct id like "=HYPERLINK(…)").
    const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\r\n]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const head = a.groupBy === null ? ['distinct_id', 'calls'] : ['distinct_id', a.groupBy, 'calls'];
  const lines = [head.join(',')];
  for (const u of a.users) lines.push((a.groupBy === null ? [u.distinctId, u.calls] : [u.distinctId, u[a.groupBy]!, u.calls]).map(cell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
