/**
 * The acceptance run for the client, every part real: Express, Fastify and Hono apps over
 * HTTP, each tracked by its middleware and its own client, reporting to the local stack (front →
 * ingest → fauxqs → poller → aggregator → dynalite). 10,000 requests; the stack is stopped a third
 * of the way in and started again on the same port and data directory while the apps keep serving;
 * afterwards the counts per user and route (one event name per route and framework, until routes
 * are a counter dimension) read back through `GET /v1/usage` equal what was sent, exactly.
 */
import { serve, type ServerType } from '@hono/node-server';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTally, expressMiddleware, fastifyPlugin, honoMiddleware, type Tally, type TallyError } from '../../client/src';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack';
import { NoopSink } from '../../src/sink/print';

jest.setTimeout(180_000);

const KEY = 'tally_client_e2e_key_0123';
const USERS = 10;
const REQUESTS = 10_000;
const FRAMEWORKS = ['express', 'fastify', 'hono'] as const;
type Framework = (typeof FRAMEWORKS)[number];
type Kind = 'big' | 'items' | 'fail' | 'unmatched';

let dataDir: string;
let stack: LocalStack;
let opts: Partial<LocalStackOptions> & Pick<LocalStackOptions, 'apiKey' | 'sink'>;
const clients = new Map<Framework, Tally>();
const errors: TallyError[] = [];
const closers: Array<() => Promise<void> | void> = [];
const bases = new Map<Framework, string>();

/** One event name per (framework, route): what the counts are checked by. */
const KIND_OF: Record<string, Kind> = { '/big/:id': 'big', '/items/:id': 'items', '/fail': 'fail' };
const eventName = (fw: Framework, route: string | undefined): string => `${fw}_${KIND_OF[route ?? ''] ?? 'unmatched'}`;

/** "a bit of work", as in the tutorial's /big/:id. */
const work = (id: string): string => {
  let h = id;
  for (let i = 0; i < 20; i++) h = createHash('sha256').update(h).digest('hex');
  return h;
};

function newClient(fw: Framework): Tally {
  const t = createTally({ url: stack.url, key: KEY, flushAt: 250, flushIntervalMs: 100, retryBaseDelayMs: 50, retryMaxDelayMs: 500, onError: (e) => errors.push(e) });
  clients.set(fw, t);
  return t;
}

async function startApps(): Promise<void> {
  const user = (h: string | string[] | undefined) => (typeof h === 'string' ? h : undefined);

  const ex = express();
  ex.use(expressMiddleware(newClient('express'), { distinctId: (req) => user(req.headers['x-user']), event: (req) => eventName('express', req.route?.path as string | undefined) }));
  ex.get('/big/:id', (req, res) => {
    res.json({ id: req.params.id, h: work(req.params.id) });
  });
  ex.get('/items/:id', (req, res) => {
    res.json({ item: req.params.id });
  });
  ex.get('/fail', () => {
    throw new Error('fails on purpose');
  });
  ex.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: 'failed' });
  });
  const exServer = ex.listen(0, '127.0.0.1');
  await new Promise((r) => exServer.once('listening', r));
  bases.set('express', `http://127.0.0.1:${(exServer.address() as AddressInfo).port}`);
  closers.push(() => new Promise<void>((r) => exServer.close(() => r())));

  const fa: FastifyInstance = Fastify();
  await fa.register(fastifyPlugin(newClient('fastify'), { distinctId: (req) => user(req.headers['x-user']), event: (req) => eventName('fastify', req.routeOptions?.url) }));
  fa.get('/big/:id', async (req) => {
    const { id } = req.params as { id: string };
    return { id, h: work(id) };
  });
  fa.get('/items/:id', async (req) => ({ item: (req.params as { id: string }).id }));
  fa.get('/fail', async () => {
    throw new Error('fails on purpose');
  });
  bases.set('fastify', await fa.listen({ port: 0, host: '127.0.0.1' }));
  closers.push(() => fa.close());

  const ho = new Hono();
  ho.use(honoMiddleware(newClient('hono'), { distinctId: (c) => c.req.header('x-user'), event: (c) => eventName('hono', c.req.routeIndex === 0 ? undefined : c.req.routePath) }));
  ho.get('/big/:id', (c) => c.json({ id: c.req.param('id'), h: work(c.req.param('id')) }));
  ho.get('/items/:id', (c) => c.json({ item: c.req.param('id') }));
  ho.get('/fail', () => {
    throw new Error('fails on purpose');
  });
  ho.onError((_e, c) => c.json({ error: 'failed' }, 500));
  const hoServer: ServerType = await new Promise((r) => {
    const s = serve({ fetch: ho.fetch, port: 0, hostname: '127.0.0.1' }, () => r(s));
  });
  bases.set('hono', `http://127.0.0.1:${(hoServer.address() as AddressInfo).port}`);
  closers.push(() => new Promise<void>((r) => hoServer.close(() => r())));
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-client-e2e-'));
  opts = { port: 0, apiKey: KEY, sink: new NoopSink(), dataDir, batchSize: 1000, batchWindowMs: 200, staleSeconds: 4, visibilityTimeoutSeconds: 6, windowSeconds: 10, graceSeconds: 8, rollupIntervalMs: 300 };
  stack = await startLocalStack(opts);
  // Restarts reuse the port: the clients keep the URL they were given.
  opts.port = Number(new URL(stack.url).port);
  await startApps();
});
afterAll(async () => {
  for (const t of clients.values()) await t.shutdown({ timeoutMs: 1000 });
  for (const c of closers) await c();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function call(agent: Agent, base: string, path: string, user: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname: u.hostname, port: u.port, path, agent, headers: { 'x-user': user } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function totalOf(event: string, distinctId?: string): Promise<number> {
  const qs = new URLSearchParams({ event, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
  if (distinctId) qs.set('distinctId', distinctId);
  const r = await fetch(`${stack.url}/v1/usage?${qs}`, { headers: { authorization: `Bearer ${KEY}` } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { total: number }).total;
}

test('10,000 requests to Express, Fastify and Hono apps, tally stopped for part of the run → exact counts per user and route', async () => {
  const expected = new Map<string, number>();
  const statuses = new Map<number, number>();
  const plan = (i: number): { fw: Framework; kind: Kind; path: string; user: string } => {
    const fw = FRAMEWORKS[i % 3]!;
    const user = `user-${(i * 7) % USERS}`;
    const k = i % 50 === 49 ? 'unmatched' : i % 10 === 9 ? 'fail' : i % 3 === 0 ? 'items' : 'big';
    const path = k === 'big' ? `/big/${i}` : k === 'items' ? `/items/${i}` : k === 'fail' ? '/fail' : `/no/such/${i}`;
    return { fw, kind: k, path, user };
  };

  let done = 0;
  let outage: Promise<void> | undefined;
  let outageRequests = 0;
  let stopping = false;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 24 }, async () => {
      while (next < REQUESTS) {
        // Stopping the stack takes 1–5 s on a loaded machine: requests go on while it stops, but not so
        // many that the outage proper would find the load nearly done.
        while (stopping && done >= 4000) await sleep(10);
        const p = plan(next++);
        const status = await call(agent, bases.get(p.fw)!, p.path, p.user);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const key = `${p.fw}_${p.kind} ${p.user}`;
        expected.set(key, (expected.get(key) ?? 0) + 1);
        done++;
        if (done === 3000) {
          // tally goes away for a while; the apps keep answering and their clients keep the calls.
          outage = (async () => {
            stopping = true;
            await stack.stop();
            stopping = false;
            // Down for 2,500 requests (fewer if stopping took long), never past the end of the load.
            const from = done;
            const until = Math.min(from + 2500, REQUESTS - 1500);
            while (done < until && next < REQUESTS) await sleep(10);
            outageRequests = done - from;
            stack = await startLocalStack(opts);
          })();
        }
      }
    }),
  );
  agent.destroy();
  await outage;
  expect(outageRequests).toBeGreaterThan(500);
  expect(statuses.get(200)! + statuses.get(500)! + statuses.get(404)!).toBe(REQUESTS);
  expect(statuses.get(404)).toBe(REQUESTS / 50);

  // Every client delivers all it tracked; during the outage its requests failed and were retried.
  for (const [fw, t] of clients) {
    expect(await t.flush({ timeoutMs: 60_000 })).toEqual({ pending: 0 });
    const s = t.stats();
    expect({ fw, tracked: s.tracked, delivered: s.delivered, dropped: s.dropped, rejected: s.rejected, skipped: s.skipped }).toEqual({ fw, tracked: s.tracked, delivered: s.tracked, dropped: 0, rejected: 0, skipped: 0 });
  }
  expect([...clients.values()].reduce((n, t) => n + t.stats().tracked, 0)).toBe(REQUESTS);
  expect([...clients.values()].reduce((n, t) => n + t.stats().retries, 0)).toBeGreaterThan(0);
  expect(errors.filter((e) => e.code !== 'send_failed')).toEqual([]);

  await stack.settle(120_000);

  // Exact per user and route (event), and in total.
  const got = new Map<string, number>();
  for (const fw of FRAMEWORKS)
    for (const kind of ['big', 'items', 'fail', 'unmatched'] as const)
      for (let u = 0; u < USERS; u++) {
        const key = `${fw}_${kind} user-${u}`;
        const n = await totalOf(`${fw}_${kind}`, `user-${u}`);
        if (n || expected.has(key)) got.set(key, n);
      }
  expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...expected].sort()));
  let total = 0;
  for (const fw of FRAMEWORKS) for (const kind of ['big', 'items', 'fail', 'unmatched']) total += await totalOf(`${fw}_${kind}`);
  expect(total).toBe(REQUESTS);
});
