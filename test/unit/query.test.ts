import { BadRequestError } from '../../src/errors';
import { queryBreakdown } from '../../src/query/breakdown';
import { queryUsage } from '../../src/query/query';
import type { ReadStore } from '../../src/store/types';

/** A store with nothing in it that records the counter ranges asked for. */
function emptyStore() {
  const asked: string[] = [];
  const store: ReadStore = {
    getState: async (shard) => ({ shard, seq: 0, phase: 'idle', part: 0, leaseUntil: 0, retryAt: 0, failures: 0 }),
    allDeltas: async () => [],
    markers: async () => new Map(),
    queryRange: async (pk, a, b) => (asked.push(`${pk} ${a}..${b}`), []),
    queryExactOrPrefixed: async (pk, sk) => (asked.push(`${pk} =${sk}`), []),
    queryAll: async (pk) => (asked.push(pk), []),
  };
  return { store, asked };
}
const NOW = Date.parse('2026-11-22T12:34:56.000Z');
const CFG = { dimensions: ['route'], shards: 8 };

test('reads one user\'s hour items over whole hours for minute and hour answers', async () => {
  const { store, asked } = emptyStore();
  const r = await queryUsage(store, { event: 'big_route', distinctId: 'u1', from: '2026-11-22T10:15:00Z', to: String(NOW) }, CFG, NOW);
  expect(asked).toEqual(['UH#default#big_route#u1 2026-11-22T10:00:00.000Z..2026-11-22T12:00:00.000Z#\uffff']);
  expect(r).toMatchObject({ event: 'big_route', distinctId: 'u1', granularity: 'hour', total: 0, from: '2026-11-22T10:00:00.000Z', to: '2026-11-22T12:00:00.000Z' });
});

test('reads the totals month items for day and month answers; default range is the last 24 hours', async () => {
  const { store, asked } = emptyStore();
  const r = await queryUsage(store, { event: 'e', granularity: 'day' }, CFG, NOW);
  expect(asked).toEqual(['TM#default#e 2026-11-01T00:00:00.000Z..2026-11-01T00:00:00.000Z#\uffff']);
  expect(r).toMatchObject({ total: 0, series: [], from: '2026-11-21T00:00:00.000Z', to: '2026-11-22T00:00:00.000Z' });
});

test('a breakdown of a month reads every bucket of that month, nothing else', async () => {
  const { store, asked } = emptyStore();
  const r = await queryBreakdown(store, { event: 'api_call', from: '2026-11-01', to: '2026-11-30' }, CFG, NOW);
  expect(asked).toHaveLength(16);
  expect(asked.every((a) => a.startsWith('UM#default#api_call#2026-11-01T00:00:00.000Z#'))).toBe(true);
  expect(r).toMatchObject({ total: 0, rows: 0, users: [], nextCursor: null, from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' });
});

test.each([
  [{}, 'event'],
  [{ event: 'e', granularity: 'week' }, 'granularity'],
  [{ event: 'e', from: 'yesterday' }, 'from'],
  [{ event: 'e', from: String(NOW), to: String(NOW - 1) }, 'from'],
  [{ event: 'e', granularity: 'minute', from: '0', to: String(NOW) }, 'granularity'],
  [{ event: 'e', 'dim.status': '200' }, 'dim.status'],
])('rejects usage query %j naming %s', async (params, path) => {
  const err = await queryUsage(emptyStore().store, params as Record<string, string>, CFG, NOW).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  expect((err as BadRequestError).details!.map((d) => d.path)).toContain(path);
});

test.each([
  [{ event: 'e', granularity: 'hour' }, 'granularity'],
  [{ event: 'e', limit: '0' }, 'limit'],
  [{ event: 'e', limit: '10001' }, 'limit'],
  [{ event: 'e', cursor: 'garbage' }, 'cursor'],
  [{ event: 'e', groupBy: 'status' }, 'groupBy'],
  [{ event: 'e', format: 'xml' }, 'format'],
])('rejects breakdown %j naming %s', async (params, path) => {
  const err = await queryBreakdown(emptyStore().store, params as Record<string, string>, CFG, NOW).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  expect((err as BadRequestError).details!.map((d) => d.path)).toContain(path);
});
