/**
 * The acceptance scenario on the local stack, every part real: HTTP front → ingest handler →
 * fauxqs (SQS wire protocol) → poller → aggregator → dynalite (DynamoDB wire protocol) → posthog-node
 * over HTTP → a PostHog stand-in. 10,000 events sent in mixed ways, PostHog down for part of the
 * run, bad requests mixed in: exactly 10,000 counted, batch events summing to 10,000.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PostHog } from 'posthog-node';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { PostHogNodeSink } from '../../src/sink/posthog';
import { startPosthogStandin, type PosthogStandin } from '../support/posthog-standin';

jest.setTimeout(180_000);

const KEY = 'tally_e2e_key_0123456789';
let standin: PosthogStandin;
let stack: LocalStack;

beforeAll(async () => {
  standin = await startPosthogStandin({ port: 0 });
  stack = await startLocalStack({
    port: 0,
    apiKey: KEY,
    sink: new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, requestTimeoutMs: 2000, fetchRetryCount: 0 }),
    batchSize: 500,
    batchWindowMs: 200,
    visibilityTimeoutSeconds: 6,
    staleSeconds: 4,
    // Shortened clocks: 10 s windows rolled up 4 s after they close.
    windowSeconds: 10,
    graceSeconds: 4,
    rollupIntervalMs: 300,
    maxReceiveCount: 10,
  });
});
afterAll(async () => {
  await stack?.stop();
  await standin?.stop();
});

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`${stack.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
const auth = { authorization: `Bearer ${KEY}` };

async function inParallel<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function totalOf(event: string, distinctId?: string): Promise<number> {
  const qs = new URLSearchParams({ event, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
  if (distinctId) qs.set('distinctId', distinctId);
  const r = await fetch(`${stack.url}/v1/usage?${qs}`, { headers: auth });
  expect(r.status).toBe(200);
  return ((await r.json()) as { total: number }).total;
}

test('10,000 mixed events, PostHog down for part of the run, bad requests mixed in → exactly 10,000', async () => {
  // PostHog is down for the first part of the run.
  standin.setDown('503');
  const statuses: number[] = [];

  // 1. 1,000 native single events (half with numeric ids).
  const singles = inParallel(1000, 16, async (i) => {
    const r = await post('/v1/usage', JSON.stringify({ distinctId: i % 2 ? i % 50 : `user-${i % 50}`, event: 'big_route', properties: { route: '/big/:id' } }), auth);
    statuses.push(r.status);
    return r;
  });

  // 2. 3,000 native batch events (30 × 100), key in x-api-key.
  const batches = inParallel(30, 4, async (b) => {
    const batch = Array.from({ length: 100 }, (_, i) => ({ distinctId: `user-${(b * 100 + i) % 50}`, event: 'api_call', timestamp: Date.now() }));
    const r = await post('/v1/usage', JSON.stringify({ batch }), { 'x-api-key': KEY });
    statuses.push(r.status);
    return r;
  });

  // 3. 5,000 events through an unmodified posthog-node client pointed at tally (gzip /batch/), numeric ids included,
  //    plus $identify calls that must be forwarded, not counted.
  const ph = new PostHog(KEY, { host: stack.url, flushAt: 250, flushInterval: 0, fetchRetryCount: 3, fetchRetryDelay: 100 });
  for (let i = 0; i < 5000; i++) ph.capture({ distinctId: i % 3 === 0 ? String(1000 + (i % 7)) : `user-${i % 50}`, event: 'big_route', properties: { status: 200 } });
  for (let i = 0; i < 5; i++) ph.identify({ distinctId: `user-${i}`, properties: { plan: 'pro' } });
  const phDone = ph.shutdown();

  // 4. 1,000 events as gzip bodies to /e/ with no content-encoding header (magic-byte detection), numeric distinct ids.
  const gz = inParallel(10, 2, async (b) => {
    const body = gzipSync(JSON.stringify({ api_key: KEY, batch: Array.from({ length: 100 }, (_, i) => ({ event: 'big_route', distinct_id: b * 100 + i })) }));
    const r = await post('/e/', body, { 'content-type': 'application/octet-stream' });
    statuses.push(r.status);
    return r;
  });

  // Bad requests, mixed in: each gets its 4xx and counts nothing.
  const bad = await Promise.all([
    post('/v1/usage', '{"distinctId": "x", ', auth), // malformed JSON
    post('/v1/usage', JSON.stringify({ distinctId: 'x' }), { authorization: 'Bearer wrong-key-123' }),
    post('/v1/usage', JSON.stringify({ distinctId: 'x' })), // no key
    post('/v1/usage', JSON.stringify({ batch: [{ distinctId: 'ok' }, { distinctId: '' }, { distinctId: 'x'.repeat(201) }] }), auth),
    post('/v1/usage', JSON.stringify({ batch: Array.from({ length: 1001 }, () => ({ distinctId: 'u' })) }), auth),
    post('/v1/usage', JSON.stringify({ distinctId: 'big', properties: { blob: 'x'.repeat(6 * 1024 * 1024) } }), auth),
    post('/batch/', JSON.stringify({ api_key: 'phc_not_tally', batch: [{ event: 'big_route', distinct_id: 'x' }] })),
    post('/batch/', JSON.stringify({ api_key: KEY, batch: [{ event: 'big_route' }] })), // no distinct id
  ]);
  expect(bad.map((r) => r.status)).toEqual([400, 401, 401, 400, 400, 413, 401, 400]);
  expect(bad[0]!.body.message).toMatch(/malformed JSON/);
  expect(bad[3]!.body.details.map((d: { path: string }) => d.path)).toEqual(['batch.1.distinctId', 'batch.2.distinctId']);
  expect(bad[7]!.body.details).toEqual([{ path: 'batch.0.distinct_id', message: 'is required' }]);

  const [s, b, , g] = await Promise.all([singles, batches, phDone, gz]);
  expect(s.every((r) => r.status === 202 && r.body.accepted === 1)).toBe(true);
  expect(b.every((r) => r.status === 202 && r.body.accepted === 100)).toBe(true);
  expect(g.every((r) => r.status === 200 && r.body.status === 1)).toBe(true);

  // Everything is counted, and visible at once, whatever PostHog does.
  await stack.settle(120_000);
  const counted = (await totalOf('big_route')) + (await totalOf('api_call'));
  expect(counted).toBe(10_000);
  expect(await totalOf('$identify')).toBe(0);
  let perUser = 0;
  for (let u = 0; u < 50; u++) perUser += await totalOf('api_call', `user-${u}`);
  expect(perUser).toBe(3000);

  // PostHog stays down until a roll-up has tried, and failed, to deliver; then it comes back.
  const downUntil = Date.now() + 60_000;
  while ((await stack.rollup()).failed === 0 && Date.now() < downUntil) await new Promise((r) => setTimeout(r, 300));
  expect(standin.count('/batch/')).toBeGreaterThan(0);
  standin.setDown(false);
  await stack.rolledUp(120_000, { delivered: true });
  expect((await totalOf('big_route')) + (await totalOf('api_call'))).toBe(10_000);

  // The outbox delivered what PostHog missed; batch events sum to exactly the counted total.
  const batchEvents = standin.unique.filter((e) => e.event.endsWith('_batch'));
  expect(batchEvents.reduce((acc, e) => acc + Number(e.properties.calls), 0)).toBe(10_000);
  expect(new Set(batchEvents.map((e) => e.event))).toEqual(new Set(['api_call_batch', 'big_route_batch']));
  // $identify went through unchanged, once each.
  expect(standin.unique.filter((e) => e.event === '$identify')).toHaveLength(5);
  // One batch event per (event, user, window), plus corrections for calls that arrived after their
  // window was rolled up: never two on-time events for the same window.
  const onTime = new Map<string, number>();
  for (const e of batchEvents.filter((x) => x.properties.late !== true)) {
    const k = `${e.event} ${String(e.distinct_id)} ${String(e.properties.window_start)}`;
    onTime.set(k, (onTime.get(k) ?? 0) + 1);
  }
  expect(Math.max(...onTime.values())).toBe(1);
  const windows = new Set(batchEvents.map((e) => String(e.properties.window_start))).size;
  const pairs = new Set(batchEvents.map((e) => `${e.event} ${String(e.distinct_id)}`)).size;
  expect(batchEvents.length).toBeLessThanOrEqual(2 * pairs * windows);
  expect(batchEvents.length).toBeLessThan(10_000);
});

test('a restart with the same data directory keeps the counts', async () => {
  // A separate stack with a data directory, so the first test's timing is not disturbed.
  const dir = mkdtempSync(join(tmpdir(), 'tally-e2e-'));
  const sink = new PostHogNodeSink({ apiKey: 'phc', host: standin.url, requestTimeoutMs: 1000, fetchRetryCount: 0 });
  const opts = { port: 0, apiKey: KEY, sink, dataDir: dir, batchWindowMs: 100, staleSeconds: 4, graceSeconds: 8, visibilityTimeoutSeconds: 6 };
  let s = await startLocalStack(opts);
  const r = await fetch(`${s.url}/v1/usage`, { method: 'POST', headers: auth, body: JSON.stringify({ batch: Array.from({ length: 42 }, () => ({ distinctId: 'restart-user', event: 'restart_probe' })) }) });
  expect(r.status).toBe(202);
  await s.settle(30_000);
  await s.stop();
  s = await startLocalStack(opts);
  try {
    const q = await fetch(`${s.url}/v1/usage?event=restart_probe&granularity=day`, { headers: auth });
    expect(((await q.json()) as { total: number }).total).toBe(42);
  } finally {
    await s.stop();
  }
});
