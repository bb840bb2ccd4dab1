/**
 * Pure: the counter updates of a roll-up unit. Each item is updated once per unit however many runs'
 * deltas touched it, with every slot it gains in the same update:
 * - per user: the hour item (`n` = hour total, `m<minute>` = minutes) and the month item (`n` = month
 *   total, `d<day>` = days), from the user shards;
 * - across users: the same two shapes, from the totals shard (rows with `distinctId` `''`), and the
 *   project's events index (one item per month and event, so the events can be listed).
 */
import type { Row } from '../aggregate/rows';
import { counterKeys, dayAttr, eventSk, eventsPk, guardAttr, minuteAttr, TOTALS_SHARD } from '../store/keys';
import type { CounterUpdate } from '../store/types';
import { windowStart } from '../windows';

export interface CounterOptions {
  /** Days hour items (minute and hour resolution) are kept; month items (day and month) are kept. */
  hourTtlDays: number;
}

export function counterUpdates(rows: readonly Row[], shard: string, seq: number, o: CounterOptions): CounterUpdate[] {
  const byItem = new Map<string, CounterUpdate>();
  const guard = guardAttr(shard);
  const totals = shard === TOTALS_SHARD;
  const add = (k: { pk: string; sk: string }, slot: string, calls: number, ttl?: number): void => {
    const id = `${k.pk}\u0000${k.sk}`;
    let u = byItem.get(id);
    if (!u) byItem.set(id, (u = { pk: k.pk, sk: k.sk, add: {}, guard, seq, ...(ttl !== undefined ? { ttl } : {}) }));
    u.add.n = (u.add.n ?? 0) + calls;
    u.add[slot] = (u.add[slot] ?? 0) + calls;
  };
  for (const r of rows) {
    const hour = windowStart(r.slot, 'hour');
    const month = windowStart(r.slot, 'month');
    const minute = new Date(r.slot).getUTCMinutes();
    const day = new Date(r.slot).getUTCDate();
    const ttl = Math.floor(hour / 1000) + o.hourTtlDays * 86_400;
    if (totals) {
      add(counterKeys.totalHour(r.project, r.event, hour, r.dims), minuteAttr(minute), r.calls, ttl);
      add(counterKeys.totalMonth(r.project, r.event, month, r.dims), dayAttr(day), r.calls);
      add({ pk: eventsPk(r.project), sk: eventSk(month, r.event) }, dayAttr(day), r.calls);
    } else {
      add(counterKeys.userHour(r.project, r.event, r.distinctId, hour, r.dims), minuteAttr(minute), r.calls, ttl);
      add(counterKeys.userMonth(r.project, r.event, r.distinctId, month, r.dims), dayAttr(day), r.calls);
    }
  }
  return [...byItem.values()];
}
