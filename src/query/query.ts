/**
 * `GET /v1/usage`: calls per window of one event — for one user or across all users, at minute, hour,
 * day or month granularity, optionally filtered by dimension values (`dim.route=/big/:id`). Exact and
 * fresh: the rolled-up counters plus the committed deltas not rolled up yet (src/query/fresh.ts).
 */
import * as z from 'zod/mini';
import type { Row } from '../aggregate/rows';
import { BadRequestError } from '../errors';
import { counterKeys, dayAttr, minuteAttr, parseDimsKey, splitCounterSk, totalHourPk, totalMonthPk, TOTALS_SHARD, userHourPk, userShard } from '../store/keys';
import type { CounterItem, ReadStore, SeriesPoint } from '../store/types';
import { DEFAULT_PROJECT, GRANULARITIES, type Granularity } from '../types';
import { mapLimit } from '../util/concurrency';
import { iso, windowCount, windowsBetween, windowStart } from '../windows';
import { freshRows, withStableStates, type FreshRow } from './fresh';

/** The most windows one answer may cover (a week of minutes, a year of hours). */
export const MAX_WINDOWS = 10_000;

export interface QueryConfig {
  /** Configured dimensions (`TALLY_DIMENSIONS`), in order. */
  dimensions: readonly string[];
  /** Per-user shards (`TALLY_SHARDS`). */
  shards: number;
}

/** A time parameter: ISO-8601 or epoch milliseconds → epoch ms (every query route reads them alike). */
export const timeParam = z.pipe(
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
  granularity: z._default(z.enum(GRANULARITIES as unknown as ['minute', 'hour', 'day', 'month'], { error: `must be one of ${GRANULARITIES.join(', ')}` }), 'hour'),
  from: z.optional(timeParam),
  to: z.optional(timeParam),
});

export interface UsageAnswer {
  event: string;
  distinctId: string | null;
  granularity: Granularity;
  /** Dimension filters applied. */
  dimensions: Record<string, string>;
  from: string;
  to: string;
  total: number;
  series: SeriesPoint[];
}

export function invalid(issues: Array<{ path: string; message: string }>): BadRequestError {
  return new BadRequestError('invalid query', issues);
}

/** `dim.<name>=value` parameters, checked against the configured dimensions. */
export function dimensionFilters(params: Record<string, string | undefined>, dimensions: readonly string[]): Map<number, string> {
  const filters = new Map<number, string>();
  const bad: Array<{ path: string; message: string }> = [];
  for (const [k, v] of Object.entries(params)) {
    if (!k.startsWith('dim.') || v === undefined) continue;
    const name = k.slice(4);
    const i = dimensions.indexOf(name);
    if (i < 0) bad.push({ path: k, message: dimensions.length ? `unknown dimension; configured: ${dimensions.join(', ')}` : 'no dimensions are configured (TALLY_DIMENSIONS)' });
    else filters.set(i, v);
  }
  if (bad.length) throw invalid(bad);
  return filters;
}

/** Whether a dimensions key (`undefined`: an item without dimensions) passes the filters. */
export function dimsMatch(dims: string | undefined, filters: Map<number, string>): boolean {
  if (filters.size === 0) return true;
  if (dims === undefined) return false;
  const values = parseDimsKey(dims);
  for (const [i, v] of filters) if (values[i] !== v) return false;
  return true;
}

/** Parses the common range parameters: whole windows of `g`, bounded in number. */
export function parseRange(q: { from?: number; to?: number }, g: Granularity, now: number, defaultSpanMs = 24 * 3_600_000): { first: number; last: number } {
  const to = q.to ?? now;
  const from = q.from ?? to - defaultSpanMs;
  if (from > to) throw invalid([{ path: 'from', message: 'must not be after to' }]);
  if (windowCount(from, to, g) > MAX_WINDOWS) throw invalid([{ path: 'granularity', message: `range covers more than ${MAX_WINDOWS} ${g} windows; use a coarser granularity` }]);
  return { first: windowStart(from, g), last: windowStart(to, g) };
}

/** Points of a counter item at granularity `g` (`head` is the item's window: an hour or a month start, ISO). */
export function itemPoints(item: CounterItem, windowHead: string, g: Granularity): Array<[number, number]> {
  const start = Date.parse(windowHead);
  const v = item.values;
  if (g === 'hour' || g === 'month') return v.n ? [[start, v.n]] : [];
  const out: Array<[number, number]> = [];
  if (g === 'minute') {
    for (let m = 0; m < 60; m++) if (v[minuteAttr(m)]) out.push([start + m * 60_000, v[minuteAttr(m)]!]);
  } else {
    for (let day = 1; day <= 31; day++) if (v[dayAttr(day)]) out.push([start + (day - 1) * 86_400_000, v[dayAttr(day)]!]);
  }
  return out;
}

/** Adds fresh rows into `into`, except those of the unit in progress already in their item (`itemFor`). */
export function addFresh(into: Map<number, number>, fresh: readonly FreshRow[], g: Granularity, first: number, last: number, itemFor: (r: Row) => CounterItem | undefined): void {
  for (const f of fresh) {
    const w = windowStart(f.row.slot, g);
    if (w < first || w > last) continue;
    if (f.inUnit && (itemFor(f.row)?.values[f.inUnit.guard] ?? 0) >= f.inUnit.seq) continue;
    into.set(w, (into.get(w) ?? 0) + f.row.calls);
  }
}

/** Validates the query string and answers the series; windows without calls are left out. */
export async function queryUsage(store: ReadStore, params: Record<string, string | undefined>, cfg: QueryConfig, now = Date.now(), project = DEFAULT_PROJECT): Promise<UsageAnswer> {
  const r = z.safeParse(usageQuerySchema, params);
  if (!r.success) throw invalid(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const q = r.data;
  const g = q.granularity;
  const filters = dimensionFilters(params, cfg.dimensions);
  const { first, last } = parseRange(q, g, now);
  const user = q.distinctId;
  const shard = user === undefined ? TOTALS_SHARD : userShard(project, q.event, user, cfg.shards);
  const hourly = g === 'minute' || g === 'hour';

  const points = await withStableStates(store, [shard], async (states) => {
    // Counter items covering the range, each with the window it holds (an hour or a month, ISO).
    let items: Array<{ item: CounterItem; window: string }>;
    const withHead = (xs: CounterItem[]) => xs.map((item) => ({ item, window: splitCounterSk(item.sk).head }));
    if (hourly) {
      const pk = user === undefined ? totalHourPk(project, q.event) : userHourPk(project, q.event, user);
      items = withHead(await store.queryRange(pk, iso(windowStart(first, 'hour')), `${iso(windowStart(last, 'hour'))}#\uffff`));
    } else if (user === undefined) {
      items = withHead(await store.queryRange(totalMonthPk(project, q.event), iso(windowStart(first, 'month')), `${iso(windowStart(last, 'month'))}#\uffff`));
    } else {
      const months = windowsBetween(first, last, 'month');
      items = (
        await mapLimit(months, 8, async (m) => {
          const k = counterKeys.userMonth(project, q.event, user, m);
          return (await store.queryExactOrPrefixed(k.pk, k.sk)).map((item) => ({ item, window: iso(m) }));
        })
      ).flat();
    }
    const sum = new Map<number, number>();
    const byKey = new Map<string, CounterItem>();
    for (const { item, window } of items) {
      byKey.set(`${item.pk}\u0000${item.sk}`, item);
      if (!dimsMatch(splitCounterSk(item.sk).dims, filters)) continue;
      for (const [w, n] of itemPoints(item, window, g)) if (w >= first && w <= last) sum.set(w, (sum.get(w) ?? 0) + n);
    }
    const st = states.get(shard)!;
    const fresh = await freshRows(store, st, (row) => row.project === project && row.event === q.event && row.distinctId === (user ?? '') && dimsMatch(row.dims, filters));
    addFresh(sum, fresh, g, first, last, (row) => {
      const k = itemKeyOf(row, project, hourly);
      return byKey.get(`${k.pk}\u0000${k.sk}`);
    });
    return sum;
  });

  const series = [...points.entries()]
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0])
    .map(([w, calls]) => ({ start: iso(w), calls }));
  return {
    event: q.event,
    distinctId: user ?? null,
    granularity: g,
    dimensions: Object.fromEntries([...filters].map(([i, v]) => [cfg.dimensions[i]!, v])),
    from: iso(first),
    to: iso(last),
    total: series.reduce((s, p) => s + p.calls, 0),
    series,
  };
}

/** The counter item a row lands in: hour items for minute/hour answers, month items for day/month ones. */
export function itemKeyOf(row: Row, project: string, hourly: boolean): { pk: string; sk: string } {
  const totals = row.distinctId === '';
  const h = windowStart(row.slot, 'hour');
  const m = windowStart(row.slot, 'month');
  if (hourly) return totals ? counterKeys.totalHour(project, row.event, h, row.dims) : counterKeys.userHour(project, row.event, row.distinctId, h, row.dims);
  return totals ? counterKeys.totalMonth(project, row.event, m, row.dims) : counterKeys.userMonth(project, row.event, row.distinctId, m, row.dims);
}
