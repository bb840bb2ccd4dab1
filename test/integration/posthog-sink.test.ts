/**
 * The PostHog sink: a real posthog-node client over real HTTP (gzip) to a PostHog stand-in; and, against a
 * scripted PostHog that accepts requests and never answers, bounded by the invocation's deadline (the sink
 * and the raw capture of sampled events share src/sink/deliver.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PostHogRawCapture } from '../../src/sampling/capture';
import { CaptureError } from '../../src/sampling/types';
import { retriesThatFit } from '../../src/sink/deliver';
import { PostHogNodeSink } from '../../src/sink/posthog';
import { withDeadline } from '../../src/util/deadline';
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
    properties: { calls: i + 1, distinctId: `user-${i}`, window_start: '2026-11-22T10:00:00.000Z', window_end: '2026-11-22T10:01:00.000Z', $geoip_disable: true },
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

test('with POSTHOG_HTTP=fetch (posthog-node\'s own global fetch) delivers the same', async () => {
  const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, maxBatchSize: 100, fetch: globalThis.fetch });
  await sink.send(events(150));
  expect(standin.unique).toHaveLength(150);
  expect(standin.batches.every((b) => b.gzipped)).toBe(true);
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

describe('a PostHog that hangs', () => {
  let hanging: Server;
  let url: string;
  let requests = 0;
  beforeAll(async () => {
    hanging = createServer((req) => {
      requests++;
      req.resume(); // reads the request, never answers
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((r) => hanging.close(r));
  });

  test('the sink never outlives the invocation’s deadline, whatever its timeouts', async () => {
    const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: url, requestTimeoutMs: 10_000, fetchRetryCount: 3, fetchRetryDelayMs: 3000 });
    const t0 = Date.now();
    await expect(withDeadline(Date.now() + 700, () => sink.send(events(3)))).rejects.toThrow(/PostHog took 0 of 3 events/);
    expect(Date.now() - t0).toBeLessThan(2500); // posthog-node's own bound here would be 4 × 10 s + 3 × 3 s
  });

  test('past the deadline the sink sends nothing at all', async () => {
    const before = requests;
    const sink = new PostHogNodeSink({ apiKey: 'phc_project', host: url });
    await expect(withDeadline(Date.now() - 1, () => sink.send(events(3)))).rejects.toThrow(/no time left/);
    expect(requests).toBe(before);
  });

  test('the raw capture of sampled events ends within its bound, with a CaptureError', async () => {
    const capture = new PostHogRawCapture({ projectKey: 'phc_project', host: url, timeoutMs: 300 });
    const sampled = events(2).map((e) => ({ event: { uuid: e.uuid, event: 'big_route', distinct_id: e.distinctId, properties: {}, timestamp: e.timestamp, received_at: 0 }, rate: 0.1 }));
    const t0 = Date.now();
    const err = await capture.capture(sampled).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(CaptureError);
    expect((err as CaptureError).failed).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('posthog-node gets only the retries that fit in the time left', () => {
    expect(retriesThatFit(Infinity, 5000, 500, 1)).toBe(1);
    expect(retriesThatFit(10_000, 5000, 500, 1)).toBe(0); // 2 × 5 s + 0.5 s > 10 s
    expect(retriesThatFit(30_000, 5000, 500, 3)).toBe(3);
    expect(retriesThatFit(12_000, 3000, 1000, 5)).toBe(2);
  });
});
