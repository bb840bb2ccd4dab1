import { LookupCache, LookupUnavailableError } from '../../src/projects/cache';
import { credentialShape, hashKey, newKeyId, newSecretKey, randomBase62, sameHash } from '../../src/projects/keys';
import { signToken, TokenError, verifyToken } from '../../src/projects/tokens';

describe('secret keys', () => {
  it('are tk_ and 40 base62 characters, distinct, and hash to a stable base64url sha256', () => {
    const a = newSecretKey();
    const b = newSecretKey();
    expect(a).toMatch(/^tk_[0-9A-Za-z]{40}$/);
    expect(a).not.toBe(b);
    expect(hashKey(a)).toBe(hashKey(a));
    expect(hashKey(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sameHash(hashKey(a), hashKey(a))).toBe(true);
    expect(sameHash(hashKey(a), hashKey(b))).toBe(false);
    expect(newKeyId()).toMatch(/^key_[0-9A-Za-z]{14}$/);
    // Every base62 character appears, none more than chance allows (no modulo bias to speak of).
    const counts = new Map<string, number>();
    for (const c of randomBase62(62_000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800);
  });

  it.each([
    [undefined, undefined],
    ['', undefined],
    ['tk_short', undefined],
    [`tk_${'a'.repeat(31)}`, undefined],
    [`tk_${'a'.repeat(65)}`, undefined],
    [`tk_${'a'.repeat(39)}é`, undefined],
    [`tk_${'a'.repeat(40)}`, 'secret'],
    ['tt_abc.def', 'token'],
    ['tally_local_0123456789abcdef', 'legacy'],
    ['short', undefined],
    ['has space inside it', undefined],
    ['naïve-key-123', undefined],
  ])('shape of %j is %j, before any lookup', (k, shape) => {
    expect(credentialShape(k)).toBe(shape);
  });
});

describe('client tokens', () => {
  const master = Buffer.from('0123456789abcdef0123456789abcdef');
  const now = Date.parse('2026-12-01T12:00:00Z');

  it('round-trip their claims and expire', () => {
    const t = signToken({ project: 'shop', distinctId: 'user-1', ttlSeconds: 900, version: 1 }, master, now);
    expect(t.token).toMatch(/^tt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(t.expiresAt).toBe('2026-12-01T12:15:00.000Z');
    expect(verifyToken(t.token, master, now + 899_000)).toEqual({ project: 'shop', distinctId: 'user-1', exp: now / 1000 + 900, version: 1 });
    expect(() => verifyToken(t.token, master, now + 900_000)).toThrow(expect.objectContaining({ reason: 'token_expired' }));
  });

  it('refuse a changed payload, another master secret, and garbage', () => {
    const t = signToken({ project: 'shop', ttlSeconds: 60, version: 1 }, master, now).token;
    const [head, sig] = t.slice(3).split('.');
    const forged = `tt_${Buffer.from(JSON.stringify({ p: 'other', e: now / 1000 + 60, v: 1 })).toString('base64url')}.${sig}`;
    for (const bad of [forged, `${t}x`, `tt_${head}`, 'tt_!!!.???', 'tt_e30.abc']) {
      expect(() => verifyToken(bad, master, now)).toThrow(TokenError);
    }
    expect(() => verifyToken(t, Buffer.from('another master secret, 32 bytes'), now)).toThrow(expect.objectContaining({ reason: 'token_invalid' }));
    // Another version of the project secret: the project revoked its tokens.
    const v2 = signToken({ project: 'shop', ttlSeconds: 60, version: 2 }, master, now).token;
    expect(verifyToken(v2, master, now).version).toBe(2);
  });
});

describe('lookup cache', () => {
  const setup = (o: { ttlMs?: number; staleMs?: number; maxEntries?: number } = {}) => {
    let t = 0;
    const calls: string[] = [];
    let failing = false;
    const data = new Map<string, string>([['a', 'A'], ['b', 'B']]);
    const cache = new LookupCache<string>(
      async (k) => {
        calls.push(k);
        if (failing) throw new Error('store down');
        return data.get(k);
      },
      { ttlMs: 1000, staleMs: 5000, maxEntries: 100, now: () => t, ...o },
    );
    return { cache, calls, data, advance: (ms: number) => (t += ms), fail: (f: boolean) => (failing = f) };
  };

  it('answers hits and misses from memory until the TTL, then looks up again (revocation within the TTL)', async () => {
    const s = setup();
    expect(await s.cache.get('a')).toBe('A');
    expect(await s.cache.get('nope')).toBeUndefined();
    expect(await s.cache.get('a')).toBe('A');
    expect(await s.cache.get('nope')).toBeUndefined();
    expect(s.calls).toEqual(['a', 'nope']);
    s.data.delete('a'); // revoked
    s.advance(999);
    expect(await s.cache.get('a')).toBe('A');
    s.advance(2);
    expect(await s.cache.get('a')).toBeUndefined();
  });

  it('serves known entries stale while the lookup fails, for a bounded time; unknown ones fail', async () => {
    const s = setup();
    await s.cache.get('a');
    s.fail(true);
    s.advance(3000);
    expect(await s.cache.get('a')).toBe('A');
    await expect(s.cache.get('b')).rejects.toBeInstanceOf(LookupUnavailableError);
    s.advance(3001); // ttl + stale passed
    await expect(s.cache.get('a')).rejects.toBeInstanceOf(LookupUnavailableError);
    s.fail(false);
    expect(await s.cache.get('a')).toBe('A');
  });

  it('asks once for concurrent misses and evicts the least recently used beyond its bound', async () => {
    const s = setup({ maxEntries: 2 });
    await Promise.all([s.cache.get('a'), s.cache.get('a'), s.cache.get('a')]);
    expect(s.calls).toEqual(['a']);
    await s.cache.get('b');
    await s.cache.get('a'); // a is now the most recent
    await s.cache.get('c'); // evicts b
    expect(s.cache.size).toBe(2);
    await s.cache.get('a');
    await s.cache.get('b');
    expect(s.calls).toEqual(['a', 'b', 'c', 'b']);
  });
});
