import { queryUsage } from '../../src/query/query';
import { BadRequestError } from '../../src/errors';
import type { SeriesPoint, UsageStore } from '../../src/store/types';

/** Records the key range asked for; answers two windows. */
function recordingStore(points: SeriesPoint[] = [{ start: '2026-11-22T10:00:00.000Z', calls: 3 }, { start: '2026-11-22T11:00:00.000Z', calls: 4 }]) {
  const asked: Array<[string, string, string]> = [];
  const store = { readSeries: async (pk: string, from: string, to: string) => (asked.push([pk, from, to]), points) } as unknown as UsageStore;
  return { store, asked };
}
const NOW = Date.parse('2026-11-22T12:34:56.000Z');

test('reads the per-user key over whole windows and sums the series', async () => {
  const { store, asked } = recordingStore();
  const r = await queryUsage(store, { event: 'big_route', distinctId: 'u1', from: '2026-11-22T10:15:00Z', to: String(NOW) }, NOW);
  expect(asked).toEqual([['c#hour#big_route#u1', '2026-11-22T10:00:00.000Z', '2026-11-22T12:00:00.000Z']]);
  expect(r).toMatchObject({ event: 'big_route', distinctId: 'u1', granularity: 'hour', total: 7 });
});

test('without distinctId it reads the all-users key; default range is the last 24 hours', async () => {
  const { store, asked } = recordingStore([]);
  const r = await queryUsage(store, { event: 'e', granularity: 'day' }, NOW);
  expect(asked[0]![0]).toBe('t#day#e');
  expect(r).toMatchObject({ total: 0, series: [], from: '2026-11-21T00:00:00.000Z', to: '2026-11-22T00:00:00.000Z' });
});

test.each([
  [{}, 'event'],
  [{ event: 'e', granularity: 'week' }, 'granularity'],
  [{ event: 'e', from: 'yesterday' }, 'from'],
  [{ event: 'e', from: String(NOW), to: String(NOW - 1) }, 'from'],
  [{ event: 'e', granularity: 'minute', from: '0', to: String(NOW) }, 'granularity'],
])('rejects %j naming %s', async (params, path) => {
  const err = await queryUsage(recordingStore().store, params as Record<string, string>, NOW).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  expect((err as BadRequestError).details!.map((d) => d.path)).toContain(path);
});
