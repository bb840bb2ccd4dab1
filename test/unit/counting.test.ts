/**
 * The pure parts of counting v2: rows, routing of rows to roll-up windows, delta encoding, the
 * roll-up's counter updates and PostHog events, and the calendar.
 */
import { commitDeadline, decodeDelta, encodeDelta, encodeParts, onTimeFrom, planDeltas, rollupWindowOf } from '../../src/aggregate/deltas';
import { aggregate, invalidMessage, mergeRows, totalsOf, type Row } from '../../src/aggregate/rows';
import { counterUpdates } from '../../src/rollup/counters';
import { unitEvents } from '../../src/rollup/events';
import { decodeEntry, encodeEntries, isRefusal } from '../../src/rollup/outbox';
import { counterKeys, dec, dimsKey, enc, parseDimsKey, TOTALS_SHARD, userShard } from '../../src/store/keys';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { aggregationWindow, isWindowLength, windowCount, windowEnd, windowsBetween, windowStart } from '../../src/windows';

const T = Date.parse('2026-11-22T10:00:00.000Z');
let n = 0;
const ev = (event: string, distinct_id: string, at: number, extra: Partial<QueuedEvent> = {}): QueuedEvent => ({
  uuid: `u-${++n}`,
  event,
  distinct_id,
  properties: {},
  timestamp: new Date(at).toISOString(),
  received_at: at,
  ...extra,
});
const msg = (events: QueuedEvent[]): QueueMessageBody => ({ v: 1, id: `m-${++n}`, events });
const W60 = aggregationWindow(60, 60);

describe('rows', () => {
  it('counts per (event, user, slot), leaves $ events out and forwards them with the client IP', () => {
    const a = aggregate(
      [
        msg([ev('big', 'u1', T + 5_000), ev('big', 'u1', T + 59_999), ev('big', 'u1', T + 60_000), ev('$identify', 'u1', T, { ip: '203.0.113.1' })]),
        msg([ev('big', 'u2', T + 30_000)]),
      ],
      { slotMs: 60_000, dimensions: [] },
    );
    expect(a.calls).toBe(4);
    expect(a.rows.map((r) => [r.event, r.distinctId, r.slot - T, r.calls])).toEqual([
      ['big', 'u1', 0, 2],
      ['big', 'u1', 60_000, 1],
      ['big', 'u2', 0, 1],
    ]);
    expect(a.forward).toHaveLength(1);
    expect(a.forward[0]!.event.properties.$ip).toBe('203.0.113.1');
    expect(a.rows.every((r) => r.project === 'default' && r.dims === undefined)).toBe(true);
  });

  it('never merges rows whose components only concatenate alike', () => {
    const a = aggregate([msg([ev('a\u0000x', 'y', T), ev('a', 'x\u0000y', T), ev('ab', 'c', T), ev('a', 'bc', T)])], { slotMs: 60_000, dimensions: [] });
    expect(a.rows).toHaveLength(4);
    expect(a.rows.every((r) => r.calls === 1)).toBe(true);
  });

  it('splits by configured dimensions, missing values as empty', () => {
    const a = aggregate(
      [msg([ev('api', 'u', T, { properties: { route: '/big/:id', status: 200 } }), ev('api', 'u', T, { properties: { route: '/big/:id', status: 500 } }), ev('api', 'u', T, { properties: { route: '/x|y' } })])],
      { slotMs: 60_000, dimensions: ['route', 'status'] },
    );
    expect(a.rows.map((r) => parseDimsKey(r.dims!))).toEqual([
      ['/big/:id', '200'],
      ['/big/:id', '500'],
      ['/x|y', ''],
    ]);
  });

  it('keeps slots shorter than a minute for short windows', () => {
    const a = aggregate([msg([ev('e', 'u', T + 9_999), ev('e', 'u', T + 10_000)])], { slotMs: 10_000, dimensions: [] });
    expect(a.rows.map((r) => r.slot - T)).toEqual([0, 10_000]);
  });

  it('sums rows across users and merges equal rows', () => {
    const rows: Row[] = [
      { project: 'p', event: 'e', distinctId: 'a', slot: T, calls: 2 },
      { project: 'p', event: 'e', distinctId: 'b', slot: T, calls: 3 },
    ];
    expect(totalsOf(rows)).toEqual([{ project: 'p', event: 'e', dims: undefined, distinctId: '', slot: T, calls: 5 }]);
    expect(mergeRows([...rows, { ...rows[0]! }])).toEqual([{ ...rows[0]!, calls: 4 }, rows[1]]);
  });

  it.each([
    [{ v: 2, id: 'x', events: [] }, 'not a tally queue message'],
    [{ v: 1, id: 'x', events: [{ uuid: 'u', event: 'e', distinct_id: 'd', timestamp: '+275760-09-13T00:00:00.000Z', properties: {} }] }, 'outside 2000–9999'],
    [{ v: 1, id: 'x', events: [{ uuid: 'u', event: '', distinct_id: 'd', timestamp: '2026-01-01T00:00:00Z' }] }, 'missing event'],
  ])('refuses message %j before anything is claimed', (m, why) => {
    expect(invalidMessage(m)).toContain(why);
  });
});

describe('roll-up windows of rows', () => {
  const start = T + 60_000 + 20_000; // 20 s into the next window

  it('keeps a row on time while its window ended less than half the grace before the run', () => {
    expect(onTimeFrom(start, W60)).toBe(T);
    expect(rollupWindowOf(T + 30_000, start, W60)).toBe(T); // previous window, 20 s after its end: on time
    expect(rollupWindowOf(T + 60_000 + 5_000, start, W60)).toBe(T + 60_000);
    expect(rollupWindowOf(T - 60_000, start, W60)).toBe(T); // older: late, rolled with the current window
    expect(rollupWindowOf(T + 3_600_000, start, W60)).toBe(T + 3_600_000); // future: its own window
    expect(commitDeadline(start, W60)).toBe(start + 30_000);
  });

  it('routes user rows by shard and their totals to the totals shard', () => {
    const a = aggregate([msg([ev('e', 'u1', T), ev('e', 'u2', T), ev('e', 'u1', T - 3_600_000), ev('$pageview', 'u1', T)])], { slotMs: 60_000, dimensions: [] });
    const plans = planDeltas(a, T + 40_000, W60, 4); // on time from T: the hour-old row is late, in T
    const totals = plans.filter((p) => p.shard === TOTALS_SHARD);
    expect(totals.map((p) => [p.window, p.rows.reduce((s, r) => s + r.calls, 0)])).toEqual([[T, 3]]);
    const users = plans.filter((p) => p.shard !== TOTALS_SHARD);
    expect(users.flatMap((p) => p.rows).reduce((s, r) => s + r.calls, 0)).toBe(3);
    for (const p of users) for (const r of p.rows) expect(p.shard).toBe(userShard('default', 'e', r.distinctId, 4));
    expect(users.flatMap((p) => p.forward)).toHaveLength(1);
  });

  it('encodes and decodes a delta, slots relative to its window', () => {
    const rows: Row[] = [
      { project: 'p', event: 'e', distinctId: 'a', slot: T + 60_000, calls: 2 },
      { project: 'p', event: 'e', dims: 'x|1', distinctId: 'b#c', slot: T - 86_400_000, calls: 7 },
    ];
    const fwd = [{ project: 'p', event: { uuid: 'x', event: '$identify', distinctId: 'a', properties: { a: 1 }, timestamp: new Date(T).toISOString() } }];
    expect(decodeDelta(T, encodeDelta(T, rows, fwd))).toEqual({ rows, forward: fwd });
  });

  it('splits a delta too large for one item into parts that hold every row', () => {
    const rows: Row[] = Array.from({ length: 20_000 }, (_, i) => ({ project: 'p', event: 'e', distinctId: `user-${i}-${(i * 7919) % 10007}`, slot: T, calls: (i % 13) + 1 }));
    const parts = encodeParts({ shard: '0', window: T, rows, forward: [] }, 40 * 1024);
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.length <= 40 * 1024)).toBe(true);
    const back = parts.flatMap((p) => decodeDelta(T, p).rows);
    expect(back).toHaveLength(rows.length);
    expect(back.reduce((s, r) => s + r.calls, 0)).toBe(rows.reduce((s, r) => s + r.calls, 0));
  });
});

describe('roll-up unit', () => {
  const rows: Row[] = [
    { project: 'default', event: 'api', distinctId: 'u1', slot: T, calls: 3 },
    { project: 'default', event: 'api', distinctId: 'u1', slot: T + 120_000, calls: 2 }, // same 5-minute window
    { project: 'default', event: 'api', distinctId: 'u1', slot: T - 3_600_000, calls: 4 }, // late
  ];
  const W300 = aggregationWindow(300, 60);

  it('emits one event per user and window, and a correction per late window, summing to the calls', () => {
    const evs = unitEvents(rows, [], { shard: '3', seq: 9, window: T, part: 0 }, W300, []);
    expect(evs.map((e) => [e.event.event, e.event.properties.calls, e.event.properties.window_start, e.event.properties.late])).toEqual([
      ['api_batch', 5, '2026-11-22T10:00:00.000Z', undefined],
      ['api_batch', 4, '2026-11-22T09:00:00.000Z', true],
    ]);
    expect(evs[0]!.event.timestamp).toBe('2026-11-22T10:00:00.000Z');
    expect(evs[0]!.event.properties.window_end).toBe('2026-11-22T10:05:00.000Z');
    // Same unit again: the same uuids (a resend is the same event); another user or window: others.
    const again = unitEvents([...rows].reverse(), [], { shard: '3', seq: 9, window: T, part: 0 }, W300, []);
    expect(new Set(again.map((e) => e.event.uuid))).toEqual(new Set(evs.map((e) => e.event.uuid)));
    const later = unitEvents(rows.slice(2), [], { shard: '3', seq: 10, window: T + 300_000, part: 0 }, W300, []);
    expect(later[0]!.event.uuid).not.toBe(evs[1]!.event.uuid);
  });

  it('carries dimension values as properties', () => {
    const [e] = unitEvents([{ project: 'default', event: 'api', distinctId: 'u', dims: dimsKey(['/big/:id', '200']), slot: T, calls: 1 }], [], { shard: '0', seq: 1, window: T, part: 0 }, W60, ['route', 'status']);
    expect(e!.event.properties).toMatchObject({ route: '/big/:id', status: '200', calls: 1 });
  });

  it('updates each counter item once with all its slots, guarded by the shard', () => {
    const ups = counterUpdates(rows, '3', 9, { hourTtlDays: 14 });
    const hour = ups.find((u) => u.pk === counterKeys.userHour('default', 'api', 'u1', T).pk && u.sk === counterKeys.userHour('default', 'api', 'u1', T).sk)!;
    expect(hour.add).toEqual({ n: 5, m0: 3, m2: 2 });
    expect(hour).toMatchObject({ guard: 'g3', seq: 9, ttl: T / 1000 + 14 * 86_400 });
    const month = ups.find((u) => u.pk === counterKeys.userMonth('default', 'api', 'u1', windowStart(T, 'month')).pk)!;
    expect(month.add).toEqual({ n: 9, d22: 9 });
    expect(month.ttl).toBeUndefined();
    expect(ups).toHaveLength(3); // two hours, one month
    const totals = counterUpdates(totalsOf(rows), TOTALS_SHARD, 4, { hourTtlDays: 14 });
    expect(totals.map((u) => u.pk)).toEqual(['TH#default#api', 'TM#default#api', 'EV#default', 'TH#default#api']);
    expect(totals.find((u) => u.pk === 'EV#default')).toMatchObject({ sk: '2026-11-01T00:00:00.000Z#api', add: { n: 9, d22: 9 } });
    expect(totals[0]!.guard).toBe('gt');
  });
});

describe('outbox entries', () => {
  it('cut events into bounded entries and back', () => {
    const events = Array.from({ length: 12_000 }, (_, i) => ({ project: 'p', event: { uuid: String(i), event: 'e_batch', distinctId: `u${i}`, timestamp: new Date(T).toISOString(), properties: { calls: i } } }));
    const entries = encodeEntries(events);
    expect(entries.map((e) => e.count)).toEqual([5000, 5000, 2000]);
    expect(entries.flatMap((e) => decodeEntry(e.data))).toEqual(events);
  });

  it('tell a refusal (4xx) from a failure worth retrying', () => {
    expect(isRefusal({ status: 400 })).toBe(true);
    expect(isRefusal({ response: { status: 413 } })).toBe(true);
    for (const s of [408, 429, 500, 503]) expect(isRefusal({ status: s })).toBe(false);
    expect(isRefusal(new Error('ECONNREFUSED'))).toBe(false);
  });
});

describe('keys and calendar', () => {
  it('escape separators so no value collides', () => {
    for (const s of ['a#b', 'a%23b', 'a|b', '%', '#|%']) expect(dec(enc(s))).toBe(s);
    expect(enc('a#b')).not.toBe(enc('a%23b'));
    expect(parseDimsKey(dimsKey(['a|b', '', 'c#']))).toEqual(['a|b', '', 'c#']);
  });

  it('knows calendar months', () => {
    const feb = Date.parse('2028-02-10T12:00:00Z');
    expect(new Date(windowStart(feb, 'month')).toISOString()).toBe('2028-02-01T00:00:00.000Z');
    expect(new Date(windowEnd(windowStart(feb, 'month'), 'month')).toISOString()).toBe('2028-03-01T00:00:00.000Z');
    expect(windowCount(Date.parse('2026-11-05Z'), Date.parse('2027-02-01Z'), 'month')).toBe(4);
    expect(windowsBetween(Date.parse('2026-12-31T23:00Z'), Date.parse('2027-01-01T01:00Z'), 'hour')).toHaveLength(3);
  });

  it('allows window lengths that tile an hour', () => {
    for (const s of [10, 12, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600]) expect(isWindowLength(s)).toBe(true);
    for (const s of [0, 5, 7, 45, 90, 7200, 10.5]) expect(isWindowLength(s)).toBe(false);
  });
});
