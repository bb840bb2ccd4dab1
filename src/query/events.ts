/**
 * `GET /v1/usage/events`: the events a project has counted in a range of months, each with its calls,
 * largest first — what a dashboard lists before it charts. Read from the project's events index (one
 * item per month and event, maintained by the totals roll-up) plus the totals not rolled up yet.
 */
import * as z from 'zod/mini';
import { dec, eventSk, eventsPk, TOTALS_SHARD } from '../store/keys';
import type { ReadStore } from '../store/types';
import { DEFAULT_PROJECT } from '../types';
import { iso, windowEnd, windowStart } from '../windows';
import { freshRows, withStableStates } from './fresh';
import { invalid, parseRange, timeParam } from './query';


export const eventsQuerySchema = z.object({ from: z.optional(timeParam), to: z.optional(timeParam) });

export interface EventsAnswer {
  /** Whole months: from the first's start to the last's end (exclusive). */
  from: string;
  to: string;
  events: Array<{ event: string; calls: number }>;
}

export async function queryEvents(store: ReadStore, params: Record<string, string | undefined>, now = Date.now(), project = DEFAULT_PROJECT): Promise<EventsAnswer> {
  const r = z.safeParse(eventsQuerySchema, params);
  if (!r.success) throw invalid(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const { first, last } = parseRange({ from: r.data.from ?? windowStart(now, 'month'), to: r.data.to }, 'month', now);
  const end = windowEnd(last, 'month');
  const sums = await withStableStates(store, [TOTALS_SHARD], async (states) => {
    const sums = new Map<string, number>();
    const items = await store.queryRange(eventsPk(project), `${iso(first)}#`, `${iso(last)}#\uffff`);
    const byKey = new Map(items.map((i) => [i.sk, i]));
    for (const i of items) {
      const event = dec(i.sk.slice(i.sk.indexOf('#') + 1));
      sums.set(event, (sums.get(event) ?? 0) + (i.values.n ?? 0));
    }
    const st = states.get(TOTALS_SHARD)!;
    for (const f of await freshRows(store, st, (row) => row.project === project && row.slot >= first && row.slot < end)) {
      if (f.inUnit) {
        const item = byKey.get(eventSk(windowStart(f.row.slot, 'month'), f.row.event));
        if ((item?.values[f.inUnit.guard] ?? 0) >= f.inUnit.seq) continue;
      }
      sums.set(f.row.event, (sums.get(f.row.event) ?? 0) + f.row.calls);
    }
    return sums;
  });
  return {
    from: iso(first),
    to: iso(end),
    events: [...sums.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([event, calls]) => ({ event, calls })),
  };
}
