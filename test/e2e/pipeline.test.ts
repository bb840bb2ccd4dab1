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
    outboxIntervalMs: 300,
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

  // Let the pipeline work while PostHog is still down, then bring it back.
  await new Promise((r) => setTimeout(r, 1500));
  standin.setDown(false);
  await stack.settle(120_000);

  // Exact counts, whatever PostHog did.
  const counted = (await totalOf('big_route')) + (await totalOf('api_call'));
  expect(counted).toBe(10_000);
  expect(await totalOf('$identify')).toBe(0);
  let perUser = 0;
  for (let u = 0; u < 50; u++) perUser += await totalOf('api_call', `user-${u}`);
  expect(perUser).toBe(3000);

  // The outbox delivers what PostHog missed; batch events sum to exactly the counted total.
  const deadline = Date.now() + 60_000;
  let sum = 0;
  while (Date.now() < deadline) {
    await stack.drainOutbox();
    sum = standin.unique.filter((e) => e.event.endsWith('_batch')).reduce((acc, e) => acc + Number(e.properties.calls), 0);
    if (sum >= 10_000) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(sum).toBe(10_000);
  // PostHog really was down for part of the run: some deliveries were refused and redone from the outbox.
  expect(standin.count('/batch/')).toBeGreaterThan(standin.batches.filter((b) => b.path === '/batch/').length);
  const names = new Set(standin.unique.filter((e) => e.event.endsWith('_batch')).map((e) => e.event));
  expect([...names].sort()).toEqual(['api_call_batch', 'big_route_batch']);
  // $identify went through unchanged, once each.
  expect(standin.unique.filter((e) => e.event === '$identify')).toHaveLength(5);
  // PostHog got fewer events than calls, by construction rather than by timing: a run takes whole messages,
  // and each api_call message carried each of its 50 users twice, so every api_call_batch event covers an
  // even number (≥ 2) of calls. How many runs there were depends on the machine's speed, so the overall
  // bound is per run: at most one batch event per (run, event, user).
  const batchEvents = standin.unique.filter((e) => e.event.endsWith('_batch'));
  const apiCallCalls = batchEvents.filter((e) => e.event === 'api_call_batch').map((e) => Number(e.properties.calls));
  expect(apiCallCalls.every((c) => c >= 2 && c % 2 === 0)).toBe(true);
  expect(apiCallCalls.length).toBeLessThanOrEqual(1500);
  expect(batchEvents.length).toBeLessThan(10_000);
  const perPair = new Map<string, number>();
  for (const e of batchEvents) perPair.set(`${e.event} ${String(e.distinct_id)}`, (perPair.get(`${e.event} ${String(e.distinct_id)}`) ?? 0) + 1);
  expect(Math.max(...perPair.values())).toBeLessThanOrEqual(stack.poller.stats.batches);
});

test('a restart with the same data directory keeps the counts', async () => {
  // A separate stack with a data directory, so the first test's timing is not disturbed.
  const dir = mkdtempSync(join(tmpdir(), 'tally-e2e-'));
  const sink = new PostHogNodeSink({ apiKey: 'phc', host: standin.url, requestTimeoutMs: 1000, fetchRetryCount: 0 });
  const opts = { port: 0, apiKey: KEY, sink, dataDir: dir, batchWindowMs: 100, staleSeconds: 4, visibilityTimeoutSeconds: 6 };
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
