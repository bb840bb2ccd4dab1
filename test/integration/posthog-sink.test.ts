/** The PostHog sink: a real posthog-node client over real HTTP (gzip) to a PostHog stand-in. */
import { PostHogNodeSink } from '../../src/sink/posthog';
import type { PostHogEvent } from '../../src/types';
import { startPosthogStandin, type PosthogStandin } from '../support/posthog-standin';

let standin: PosthogStandin;
beforeAll(async () => {
  standin = await startPosthogStandin({ port: 0 });
});
afterAll(async () => {
  await standin?.stop();
});
beforeEach(() => standin.reset());

const events = (n: number): PostHogEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    uuid: `01a2043c-0000-7000-8000-${String(i).padStart(12, '0')}`,
    event: 'big_route_batch',
    distinctId: `user-${i}`,
    timestamp: '2026-11-22T10:00:00.000Z',
    properties: { calls: i + 1, distinctId: `user-${i}`, tally_batch_id: 'b1' },
  }));

test('delivers every event, gzip, with our uuids, timestamps and properties', async () => {
  const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, maxBatchSize: 100 });
  await sink.send(events(250));
  expect(standin.unique).toHaveLength(250);
  expect(standin.batches.length).toBe(3); // 100 + 100 + 50
  expect(standin.batches.every((b) => b.gzipped && b.apiKey === 'phc_project')).toBe(true);
  const e = standin.unique.find((x) => x.uuid === '01a2043c-0000-7000-8000-000000000007')!;
  expect(e).toMatchObject({ event: 'big_route_batch', distinct_id: 'user-7', timestamp: '2026-11-22T10:00:00.000Z' });
  expect(e.properties).toMatchObject({ calls: 8, distinctId: 'user-7', $geoip_disable: true });
});

test('rejects when PostHog answers 503, so the outbox keeps the events', async () => {
  standin.setDown('503');
  const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, fetchRetryCount: 0 });
  await expect(sink.send(events(3))).rejects.toThrow();
  expect(standin.unique).toHaveLength(0);
});

test('gives up on a host that hangs up within the documented bound', async () => {
  standin.setDown('destroy');
  const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, requestTimeoutMs: 500, fetchRetryCount: 1, fetchRetryDelayMs: 100 });
  const t0 = Date.now();
  await expect(sink.send(events(3))).rejects.toThrow();
  // bound: requestTimeout × (retries + 1) + delay × retries = 1.1 s, plus scheduling slack
  expect(Date.now() - t0).toBeLessThan(3000);
});
