import { fromNative } from '../../src/ingest/normalise';
import { deterministicUuid, uuidv7 } from '../../src/util/ids';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  it('has the RFC 9562 layout, and its first 48 bits are the given Unix ms', () => {
    for (const ms of [0, 1, Date.UTC(2026, 10, 22, 12, 0, 0, 123), 2 ** 48 - 1]) {
      const u = uuidv7(ms);
      expect(u).toMatch(V7);
      expect(parseInt(u.slice(0, 8) + u.slice(9, 13), 16)).toBe(ms);
    }
  });

  it('a later millisecond sorts later, whatever the random bits', () => {
    const t = Date.now();
    for (let i = 0; i < 1000; i++) expect(uuidv7(t + i + 1) > uuidv7(t + i)).toBe(true);
  });

  it('100,000 in one millisecond are distinct, and their random digits are evenly spread', () => {
    const ms = Date.now();
    const seen = new Set<string>();
    const variant = new Map<string, number>();
    const digits = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const u = uuidv7(ms);
      seen.add(u);
      variant.set(u[19]!, (variant.get(u[19]!) ?? 0) + 1);
      for (const c of u.slice(24)) digits.set(c, (digits.get(c) ?? 0) + 1);
    }
    expect(seen.size).toBe(100_000);
    expect([...variant.keys()].sort()).toEqual(['8', '9', 'a', 'b']);
    for (const n of variant.values()) expect(Math.abs(n - 25_000)).toBeLessThan(1_000); // > 6 σ
    expect(digits.size).toBe(16);
    for (const n of digits.values()) expect(Math.abs(n - 75_000)).toBeLessThan(2_000); // > 7 σ
  });
});

describe('deterministicUuid', () => {
  it('the same parts give the same uuid; other parts another', () => {
    expect(deterministicUuid('a', 'b')).toBe(deterministicUuid('a', 'b'));
    expect(deterministicUuid('a', 'b')).not.toBe(deterministicUuid('ab'));
    expect(deterministicUuid('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('normalise: the receipt time, formatted once per millisecond', () => {
  it('alternating receipt times each give their own timestamp and uuid time', () => {
    const a = Date.UTC(2026, 0, 1, 0, 0, 0, 1);
    const b = Date.UTC(2026, 5, 1, 0, 0, 0, 2);
    for (const at of [a, b, a, b, b, a]) {
      const e = fromNative({ distinctId: 'u', event: 'api_call' }, { receivedAt: at });
      expect(e.timestamp).toBe(new Date(at).toISOString());
      expect(parseInt(e.uuid.slice(0, 8) + e.uuid.slice(9, 13), 16)).toBe(at);
    }
    const own = fromNative({ distinctId: 'u', event: 'api_call', timestamp: a + 5 }, { receivedAt: b });
    expect(own.timestamp).toBe(new Date(a + 5).toISOString());
  });
});
