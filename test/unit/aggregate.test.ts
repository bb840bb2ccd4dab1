import { aggregate, batchEvents, counterDeltas } from '../../src/aggregate/aggregate';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';

const e = (event: string, distinct_id: string, timestamp: string, extra: Partial<QueuedEvent> = {}): QueuedEvent => ({
  uuid: `${event}-${distinct_id}-${timestamp}-${Math.random()}`,
  event,
  distinct_id,
  properties: {},
  timestamp,
  received_at: 0,
  ...extra,
});
const msg = (id: string, events: QueuedEvent[]): QueueMessageBody => ({ v: 1, id, events });

describe('aggregate', () => {
  const msgs = [
    msg('m1', [
      e('big_route', 'u1', '2026-11-22T10:00:05.000Z'),
      e('big_route', 'u1', '2026-11-22T10:00:59.999Z'),
      e('big_route', 'u1', '2026-11-22T10:01:00.000Z'),
      e('$identify', 'u1', '2026-11-22T10:00:01.000Z', { ip: '203.0.113.1', properties: { $set: { a: 1 } } }),
    ]),
    msg('m2', [e('big_route', 'u2', '2026-11-22T10:00:30.000Z'), e('other', 'u1', '2026-11-22T11:30:00.000Z')]),
  ];
  const agg = aggregate(msgs);

  it('counts per (event, user, minute) and leaves $ events out of the counts', () => {
    expect(agg.calls).toBe(5);
    const rows = agg.rows.map((r) => [r.event, r.distinctId, new Date(r.minute).toISOString(), r.calls]);
    expect(rows).toEqual(
      expect.arrayContaining([
        ['big_route', 'u1', '2026-11-22T10:00:00.000Z', 2],
        ['big_route', 'u1', '2026-11-22T10:01:00.000Z', 1],
        ['big_route', 'u2', '2026-11-22T10:00:00.000Z', 1],
        ['other', 'u1', '2026-11-22T11:30:00.000Z', 1],
      ]),
    );
    expect(rows).toHaveLength(4);
  });

  it('forwards $ events unchanged but for the client IP', () => {
    expect(agg.forward).toHaveLength(1);
    expect(agg.forward[0]).toMatchObject({ event: '$identify', distinctId: 'u1', properties: { $set: { a: 1 }, $ip: '203.0.113.1' } });
  });

  it('derives minute, hour and day deltas per user and in total, one per item', () => {
    const d = counterDeltas(agg.rows);
    const get = (pk: string, sk: string) => d.find((x) => x.pk === pk && x.sk === sk)?.calls;
    expect(get('c#minute#big_route#u1', '2026-11-22T10:00:00.000Z')).toBe(2);
    expect(get('c#hour#big_route#u1', '2026-11-22T10:00:00.000Z')).toBe(3);
    expect(get('c#day#big_route#u1', '2026-11-22T00:00:00.000Z')).toBe(3);
    expect(get('t#minute#big_route', '2026-11-22T10:00:00.000Z')).toBe(3);
    expect(get('t#day#big_route', '2026-11-22T00:00:00.000Z')).toBe(4);
    expect(new Set(d.map((x) => `${x.pk} ${x.sk}`)).size).toBe(d.length);
    // Every granularity sums to the same total.
    for (const g of ['minute', 'hour', 'day']) {
      expect(d.filter((x) => x.pk.startsWith(`t#${g}#`)).reduce((s, x) => s + x.calls, 0)).toBe(5);
      expect(d.filter((x) => x.pk.startsWith(`c#${g}#`)).reduce((s, x) => s + x.calls, 0)).toBe(5);
    }
  });

  it('escapes # in names so keys cannot collide', () => {
    const d = counterDeltas(aggregate([msg('x', [e('a#b', 'c', '2026-11-22T10:00:00Z'), e('a', 'b#c', '2026-11-22T10:00:00Z')])]).rows);
    expect(d.filter((x) => x.pk.startsWith('c#minute#'))).toHaveLength(2);
  });

  it('makes one <event>_batch per (event, user) whose calls sum to the counted total, with stable uuids', () => {
    const b = batchEvents('batch-1', agg.rows);
    expect(b).toHaveLength(3);
    expect(b.reduce((s, x) => s + (x.properties.calls as number), 0)).toBe(agg.calls);
    const u1 = b.find((x) => x.event === 'big_route_batch' && x.distinctId === 'u1')!;
    expect(u1.properties).toMatchObject({ calls: 3, distinctId: 'u1', window_start: '2026-11-22T10:00:00.000Z', window_end: '2026-11-22T10:02:00.000Z' });
    expect(batchEvents('batch-1', agg.rows).map((x) => x.uuid)).toEqual(b.map((x) => x.uuid));
    expect(batchEvents('batch-2', agg.rows)[0]!.uuid).not.toBe(b[0]!.uuid);
  });
});
