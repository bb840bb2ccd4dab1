/**
 * Pure aggregation: messages → rows per (event, distinct id, minute) → counter deltas and PostHog
 * batch events. No I/O; the orchestration (claims, ledger, outbox) lives in aggregator.ts.
 */
import { counterPk, windowSk, windowStart, WINDOW_MS } from '../store/keys';
import type { AggRow, CounterDelta } from '../store/types';
import { GRANULARITIES, type PostHogEvent, type QueueMessageBody } from '../types';
import { deterministicUuid } from '../util/ids';

/** `$`-prefixed events are PostHog's own ($identify, $pageview, …): forwarded, never counted. */
export const isPostHogSystemEvent = (event: string): boolean => event.charCodeAt(0) === 36; /* $ */

export interface Aggregate {
  rows: AggRow[];
  forward: PostHogEvent[];
  calls: number;
}

/** Counts the events of `messages` per (event, distinct id, minute) and collects `$` events. */
export function aggregate(messages: readonly QueueMessageBody[]): Aggregate {
  const byKey = new Map<string, AggRow>();
  const forward: PostHogEvent[] = [];
  let calls = 0;
  for (const m of messages) {
    for (const e of m.events) {
      if (isPostHogSystemEvent(e.event)) {
        const properties = e.ip !== undefined && e.properties.$ip === undefined ? { ...e.properties, $ip: e.ip } : e.properties;
        forward.push({ uuid: e.uuid, event: e.event, distinctId: e.distinct_id, properties, timestamp: e.timestamp });
        continue;
      }
      const ts = Date.parse(e.timestamp);
      const minute = windowStart(ts, 'minute');
      const key = `${e.event}\u0000${e.distinct_id}\u0000${minute}`;
      const row = byKey.get(key);
      if (row) {
        row.calls++;
        if (ts > row.last) row.last = ts;
      } else {
        byKey.set(key, { event: e.event, distinctId: e.distinct_id, minute, calls: 1, last: ts });
      }
      calls++;
    }
  }
  return { rows: [...byKey.values()], forward, calls };
}

/**
 * Counter deltas of rows: per user and across users, at minute, hour and day. Rows of one user in
 * several minutes of an hour become one hour delta, so each item is written once per batch.
 */
export function counterDeltas(rows: readonly AggRow[]): CounterDelta[] {
  const deltas = new Map<string, CounterDelta>();
  const add = (pk: string, startMs: number, calls: number, granularity: CounterDelta['granularity']): void => {
    const sk = windowSk(startMs);
    const k = `${pk}\u0000${sk}`;
    const d = deltas.get(k);
    if (d) d.calls += calls;
    else deltas.set(k, { pk, sk, calls, granularity });
  };
  for (const r of rows) {
    for (const g of GRANULARITIES) {
      const start = windowStart(r.minute, g);
      add(counterPk(g, r.event, r.distinctId), start, r.calls, g);
      add(counterPk(g, r.event), start, r.calls, g);
    }
  }
  return [...deltas.values()];
}

/**
 * One PostHog event per (event, distinct id) of a batch: `<event>_batch` with the calls added, and
 * the window they fall in. Its uuid derives from the batch id, so a resend is the same event.
 */
export function batchEvents(batchId: string, rows: readonly AggRow[]): PostHogEvent[] {
  const byUser = new Map<string, { event: string; distinctId: string; calls: number; first: number; lastMinute: number; last: number }>();
  for (const r of rows) {
    const k = `${r.event}\u0000${r.distinctId}`;
    const u = byUser.get(k);
    if (u) {
      u.calls += r.calls;
      if (r.minute < u.first) u.first = r.minute;
      if (r.minute > u.lastMinute) u.lastMinute = r.minute;
      if (r.last > u.last) u.last = r.last;
    } else {
      byUser.set(k, { event: r.event, distinctId: r.distinctId, calls: r.calls, first: r.minute, lastMinute: r.minute, last: r.last });
    }
  }
  return [...byUser.values()].map((u) => ({
    uuid: deterministicUuid('tally-batch', batchId, u.event, u.distinctId),
    event: `${u.event}_batch`,
    distinctId: u.distinctId,
    timestamp: new Date(u.last).toISOString(),
    properties: {
      calls: u.calls,
      distinctId: u.distinctId,
      window_start: new Date(u.first).toISOString(),
      window_end: new Date(u.lastMinute + WINDOW_MS.minute).toISOString(),
      tally_batch_id: batchId,
    },
  }));
}
