import { groupIntoCalls, packMessages } from '../../src/queue/pack';
import { PayloadTooLargeError } from '../../src/errors';
import type { QueuedEvent } from '../../src/types';

const ev = (i: number, pad = 0): QueuedEvent => ({
  uuid: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`,
  event: 'api_call',
  distinct_id: `u${i}`,
  properties: pad ? { pad: 'x'.repeat(pad) } : {},
  timestamp: '2026-11-22T00:00:00.000Z',
  received_at: 0,
});

describe('packMessages', () => {
  it('puts a request in one message when it fits, and every event survives the round trip', () => {
    const events = Array.from({ length: 1000 }, (_, i) => ev(i));
    const msgs = packMessages(events, 1024 * 1024);
    expect(msgs).toHaveLength(1);
    expect(JSON.parse(msgs[0]!.body).events).toEqual(events);
  });

  it('splits at the byte limit and never exceeds it', () => {
    const events = Array.from({ length: 300 }, (_, i) => ev(i, 1000));
    const msgs = packMessages(events, 64 * 1024);
    expect(msgs.length).toBeGreaterThan(4);
    for (const m of msgs) expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(64 * 1024);
    expect(msgs.flatMap((m) => JSON.parse(m.body).events.map((e: QueuedEvent) => e.uuid))).toEqual(events.map((e) => e.uuid));
  });

  it('counts multi-byte characters as bytes', () => {
    const events = Array.from({ length: 100 }, (_, i) => ({ ...ev(i), properties: { s: '€'.repeat(300) } }));
    for (const m of packMessages(events, 16 * 1024)) expect(Buffer.byteLength(m.body)).toBeLessThanOrEqual(16 * 1024);
  });

  it('gives the same message ids for the same event uuids (idempotent client retries)', () => {
    const a = packMessages([ev(1), ev(2)], 1 << 20);
    const b = packMessages([{ ...ev(1), received_at: 99 }, ev(2)], 1 << 20);
    const c = packMessages([ev(1), ev(3)], 1 << 20);
    expect(a[0]!.id).toBe(b[0]!.id);
    expect(a[0]!.id).not.toBe(c[0]!.id);
  });

  it('cuts a retried request into the same messages whatever IP it comes from (the client decides the cut, not the receipt)', () => {
    const request = Array.from({ length: 60 }, (_, i) => ev(i, 200));
    const from = (ip: string | undefined, receivedAt: number) => packMessages(request.map((e) => ({ ...e, ip, received_at: receivedAt })), 4096);
    const v4 = from('1.2.3.4', 1_764_633_600_000);
    const v6 = from('2001:db8:85a3:1234:5678:8a2e:370:7334', 1_764_633_659_999);
    const mapped = from('0000:0000:0000:0000:0000:ffff:192.168.100.200', 1_764_633_600_001);
    const none = from(undefined, 1_764_633_600_002);
    expect(v4.length).toBeGreaterThan(3);
    for (const other of [v6, mapped, none]) expect(other.map((m) => [m.id, m.events])).toEqual(v4.map((m) => [m.id, m.events]));
    for (const m of [...v4, ...v6, ...mapped, ...none]) expect(m.body.length).toBeLessThanOrEqual(4096);
  });

  it('rejects one event larger than a message with 413', () => {
    expect(() => packMessages([ev(1, 70_000)], 64 * 1024)).toThrow(PayloadTooLargeError);
  });
});

describe('groupIntoCalls', () => {
  it('respects 10 entries and 1 MiB per SendMessageBatch', () => {
    const small = Array.from({ length: 25 }, (_, i) => ({ id: String(i), body: 'x', events: 1 }));
    expect(groupIntoCalls(small).map((c) => c.length)).toEqual([10, 10, 5]);
    const big = Array.from({ length: 4 }, (_, i) => ({ id: String(i), body: 'x'.repeat(400 * 1024), events: 1 }));
    expect(groupIntoCalls(big).map((c) => c.length)).toEqual([2, 2]);
  });
});
