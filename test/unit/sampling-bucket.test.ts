import { createHash } from 'node:crypto';
import { inRollout, LONG_SCALE, posthogBucket } from '../../src/sampling/bucket';
import { parsePersonPropertyMapping, personPropertiesOf } from '../../src/sampling/person';
import type { QueuedEvent } from '../../src/types';

/** PostHog's formula as written in its SDKs: parseInt(sha1(key.id)[:15], 16) / 0xfffffffffffffff. */
const reference = (key: string, id: string) => parseInt(createHash('sha1').update(`${key}.${id}`, 'utf8').digest('hex').slice(0, 15), 16) / 0xfffffffffffffff;

describe('posthogBucket', () => {
  it('is bit-for-bit PostHog’s formula for 10,000 ids', () => {
    for (let i = 0; i < 10_000; i++) {
      const id = i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? String(i) : `ü-${i}-日本-${'x'.repeat(i % 50)}`;
      expect(posthogBucket('usage-sampling', id)).toBe(reference('usage-sampling', id));
    }
  });

  it('covers edge inputs: empty, surrogates, long ids', () => {
    for (const id of ['', ' ', '\uD83D\uDE00', '\uD800', 'a'.repeat(5000), '0', '-1', 'null']) {
      expect(posthogBucket('k', id)).toBe(reference('k', id));
    }
    expect(LONG_SCALE).toBe(2 ** 60);
  });

  it('is uniform enough: ~10% of 100,000 ids fall inside a 10% rollout', () => {
    let n = 0;
    for (let i = 0; i < 100_000; i++) if (inRollout(posthogBucket('usage-sampling', `id-${i}`), 10)) n++;
    expect(n).toBeGreaterThan(9_700);
    expect(n).toBeLessThan(10_300);
  });

  it('inRollout follows PostHog: hash > pct/100 is out; no rollout is 100%', () => {
    expect(inRollout(0.1, 10)).toBe(true);
    expect(inRollout(0.1000001, 10)).toBe(false);
    expect(inRollout(0, 0)).toBe(true);
    expect(inRollout(0.5, null)).toBe(true);
    expect(inRollout(0.5, undefined)).toBe(true);
    expect(inRollout(1, 100)).toBe(true);
  });
});

describe('person properties from the event', () => {
  const ev = (properties: Record<string, unknown>): QueuedEvent => ({ uuid: 'u', event: 'big_route', distinct_id: 'd', properties, timestamp: '', received_at: 0 });

  it('parses the mapping', () => {
    expect(parsePersonPropertyMapping(' firstRouteCalled = route , plan ')).toEqual([
      ['firstRouteCalled', 'route'],
      ['plan', 'plan'],
    ]);
    expect(parsePersonPropertyMapping('')).toEqual([]);
    expect(parsePersonPropertyMapping(undefined)).toEqual([]);
    expect(() => parsePersonPropertyMapping('a=b=c')).toThrow(/a=b=c/);
    expect(() => parsePersonPropertyMapping('a b')).toThrow();
  });

  it('$set_once, then $set, then the mapping; missing values are left out', () => {
    const mapping = parsePersonPropertyMapping('firstRouteCalled=route,plan');
    expect(personPropertiesOf(ev({ $set_once: { a: 1, b: 1 }, $set: { b: 2 }, route: '/big/1' }), mapping)).toEqual({ a: 1, b: 2, firstRouteCalled: '/big/1' });
    expect(personPropertiesOf(ev({ route: '/x' }), [])).toEqual({});
    expect(personPropertiesOf(ev({ $set: 'not an object', plan: undefined }), mapping)).toEqual({});
    expect(personPropertiesOf(ev({ $set: { firstRouteCalled: '/a' }, route: '/b' }), mapping)).toEqual({ firstRouteCalled: '/b' });
  });
});
