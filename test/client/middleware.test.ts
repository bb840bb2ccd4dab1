/**
 * The middleware in real Express, Fastify and Hono apps over real HTTP, and in a real middy handler
 * with API Gateway v1 and v2 events, reporting to the tally stand-in: the route template (never the
 * raw path), method, status, duration, the event name, a missing distinctId (skipped, reported once),
 * and option functions that throw (the request still succeeds).
 */
import { serve, type ServerType } from '@hono/node-server';
import middy from '@middy/core';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTally, expressMiddleware, fastifyPlugin, honoMiddleware, middyMiddleware, UNMATCHED_ROUTE, type Tally, type TallyError } from '../../client/src';
import { startTallyStandin, type TallyStandin } from '../support/tally-standin';

const KEY = 'tally_standin_key';
let standin: TallyStandin;
let tally: Tally;
let errors: TallyError[];

beforeEach(async () => {
  standin = await startTallyStandin({ key: KEY });
  errors = [];
  tally = createTally({ url: standin.url, key: KEY, flushIntervalMs: 60_000, onError: (e) => errors.push(e) });
});
afterEach(async () => {
  await tally.shutdown({ timeoutMs: 1000 });
  await standin.stop();
});

type Recorded = { distinctId: unknown; event: unknown; properties: Record<string, unknown> };
async function recorded(): Promise<Recorded[]> {
  await tally.flush();
  return standin.requests.flatMap((r) => r.events) as Recorded[];
}

async function get(base: string, path: string, user?: string): Promise<number> {
  const r = await fetch(`${base}${path}`, { headers: user ? { 'x-user': user } : {} });
  await r.text();
  return r.status;
}

/** The same requests against each app: a route with a parameter, a nested one, a 404, an error, no user. */
async function exercise(base: string): Promise<number[]> {
  return [await get(base, '/big/17', 'alice'), await get(base, '/sub/items/9', 'bob'), await get(base, '/nope/1', 'carol'), await get(base, '/boom', 'dave'), await get(base, '/big/18'), await get(base, '/big/19')];
}

function expectRecorded(rows: Recorded[], routes: { big: string; nested: string; boom: string }): void {
  expect(rows.map((r) => [r.distinctId, r.event, r.properties.route, r.properties.method, r.properties.status])).toEqual([
    ['alice', 'big_route', routes.big, 'GET', 200],
    ['bob', 'api_call', routes.nested, 'GET', 200],
    ['carol', 'api_call', UNMATCHED_ROUTE, 'GET', 404],
    ['dave', 'api_call', routes.boom, 'GET', 500],
  ]);
  for (const r of rows) {
    expect(typeof r.properties.duration_ms).toBe('number');
    expect(r.properties.duration_ms as number).toBeGreaterThanOrEqual(0);
  }
  // /big/17 does ~20 ms of work; its duration covers it.
  expect(rows[0]!.properties.duration_ms as number).toBeGreaterThanOrEqual(15);
  // The two requests without a user were skipped, and said so once.
  expect(errors.filter((e) => e.code === 'missing_distinct_id')).toHaveLength(1);
  expect(errors[0]!.message).toMatch(/distinctId\(req\) returned undefined for GET \/big/);
  expect(tally.stats().skipped).toBe(2);
}

const closeServer = (s: { close(): unknown; closeAllConnections?(): void }) => {
  s.closeAllConnections?.();
  s.close();
};
const work = () => new Promise((r) => setTimeout(r, 20));
const eventOf = (route: string | undefined) => (route === '/big/:id' || route === '/big/{id}' ? 'big_route' : 'api_call');

it('Express: route templates including the mount path, 404 and async errors', async () => {
  const app = express();
  app.use(expressMiddleware(tally, { distinctId: (req) => req.headers['x-user'] as string | undefined, event: (req) => eventOf(req.route?.path as string) }));
  app.get('/big/:id', async (req, res) => {
    await work();
    res.json({ id: req.params.id });
  });
  const sub = express.Router();
  sub.get('/items/:id', (_req, res) => {
    res.send('item');
  });
  app.use('/sub', sub);
  app.get('/boom', async () => {
    await work();
    throw new Error('boom');
  });
  app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).send('failed');
  });
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  try {
    expect(await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)).toEqual([200, 200, 404, 500, 200, 200]);
  } finally {
    closeServer(server);
  }
  expectRecorded(await recorded(), { big: '/big/:id', nested: '/sub/items/:id', boom: '/boom' });
});

it('Express: an error thrown after the await in a nested router keeps the mount path', async () => {
  const app = express();
  app.use(expressMiddleware(tally, { distinctId: () => 'u' }));
  const sub = express.Router();
  sub.get('/fail/:id', async () => {
    await work();
    throw new Error('late');
  });
  app.use('/sub', sub);
  app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(502).end();
  });
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  try {
    expect(await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, '/sub/fail/3')).toBe(502);
  } finally {
    closeServer(server);
  }
  expect((await recorded()).map((r) => [r.properties.route, r.properties.status])).toEqual([['/sub/fail/:id', 502]]);
});

it('Fastify: route templates including prefixes, 404 and errors', async () => {
  const app = Fastify();
  await app.register(fastifyPlugin(tally, { distinctId: (req) => req.headers['x-user'] as string | undefined, event: (req) => eventOf(req.routeOptions?.url) }));
  app.get('/big/:id', async (req) => {
    await work();
    return { id: (req.params as { id: string }).id };
  });
  await app.register(
    async (f) => {
      f.get('/items/:id', async () => 'item');
    },
    { prefix: '/sub' },
  );
  app.get('/boom', async () => {
    await work();
    throw new Error('boom');
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    expect(await exercise(base)).toEqual([200, 200, 404, 500, 200, 200]);
  } finally {
    await app.close();
  }
  expectRecorded(await recorded(), { big: '/big/:id', nested: '/sub/items/:id', boom: '/boom' });
});

it('Hono: route templates including sub-apps, 404 and errors', async () => {
  const app = new Hono();
  app.use(honoMiddleware(tally, { distinctId: (c) => c.req.header('x-user'), event: (c) => eventOf(c.req.routePath) }));
  app.get('/big/:id', async (c) => {
    await work();
    return c.json({ id: c.req.param('id') });
  });
  const sub = new Hono();
  sub.get('/items/:id', (c) => c.text('item'));
  app.route('/sub', sub);
  app.get('/boom', async () => {
    await work();
    throw new Error('boom');
  });
  app.onError((_err, c) => c.text('failed', 500));
  const server: ServerType = await new Promise((r) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => r(s));
  });
  try {
    expect(await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)).toEqual([200, 200, 404, 500, 200, 200]);
  } finally {
    closeServer(server);
  }
  expectRecorded(await recorded(), { big: '/big/:id', nested: '/sub/items/:id', boom: '/boom' });
});

describe('middy (API Gateway on Lambda)', () => {
  const context = { getRemainingTimeInMillis: () => 5000 } as never;
  const v2 = (routeKey: string, rawPath: string, user?: string) => ({
    version: '2.0',
    routeKey,
    rawPath,
    headers: user ? { 'x-user': user } : {},
    requestContext: { http: { method: routeKey.includes(' ') ? routeKey.split(' ')[0] : 'GET', path: rawPath } },
  });
  const v1 = (resource: string, path: string, user?: string) => ({ resource, path, httpMethod: 'POST', headers: user ? { 'x-user': user } : {}, requestContext: { resourcePath: resource, httpMethod: 'POST' } });

  it('tracks each invocation with API Gateway route templates and flushes before the invocation ends', async () => {
    const handler = middy(async (event: { rawPath?: string; path?: string }) => {
      const p = event.rawPath ?? event.path ?? '';
      if (p.startsWith('/boom')) throw Object.assign(new Error('teapot'), { statusCode: 418 });
      if (p.startsWith('/plain')) return 'ok';
      await work();
      return { statusCode: 201, body: '{}' };
    }).use(middyMiddleware(tally, { distinctId: (event) => event.headers?.['x-user'], event: (event) => eventOf(event.routeKey?.split(' ')[1] ?? event.resource) }));

    await expect(handler(v2('GET /big/{id}', '/big/5', 'alice') as never, context)).resolves.toEqual({ statusCode: 201, body: '{}' });
    // Flushed at the end of the invocation: tally has it already.
    expect(standin.requests.flatMap((r) => r.events)).toHaveLength(1);
    await handler(v1('/orders/{id}', '/orders/5', 'bob') as never, context);
    await handler(v2('$default', '/plain/x', 'carol') as never, context);
    await expect(handler(v2('GET /boom', '/boom', 'dave') as never, context)).rejects.toThrow('teapot');
    await handler(v2('GET /big/{id}', '/big/6') as never, context);
    const rows = standin.requests.flatMap((r) => r.events) as Recorded[];
    expect(rows.map((r) => [r.distinctId, r.event, r.properties.route, r.properties.method, r.properties.status])).toEqual([
      ['alice', 'big_route', '/big/{id}', 'GET', 201],
      ['bob', 'api_call', '/orders/{id}', 'POST', 201],
      ['carol', 'api_call', '$default', 'GET', 200],
      ['dave', 'api_call', '/boom', 'GET', 418],
    ]);
    expect(rows[0]!.properties.duration_ms as number).toBeGreaterThanOrEqual(15);
    expect(standin.requests).toHaveLength(4);
    expect(tally.stats().skipped).toBe(1);
  });

  it('does not hold the invocation past its flush timeout when tally is down', async () => {
    await standin.goDown();
    const handler = middy(async () => ({ statusCode: 200, body: '' })).use(middyMiddleware(tally, { distinctId: () => 'u', flushTimeoutMs: 100 }));
    const t0 = Date.now();
    await expect(handler(v2('GET /x', '/x') as never, context)).resolves.toEqual({ statusCode: 200, body: '' });
    // Bounded by flushTimeoutMs (not a speed assertion: without the bound it would wait for tally indefinitely).
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(tally.stats().queued).toBe(1);
  });
});

it('never fails a request: option functions that throw are reported once, and the app answers', async () => {
  const app = express();
  app.use(
    expressMiddleware(tally, {
      distinctId: (req) => {
        if (req.headers['x-user'] === 'throws') throw new Error('no auth header parser');
        return req.headers['x-user'] as string;
      },
      properties: (req) => {
        if (req.headers['x-user'] === 'props') throw new Error('bad properties');
        return { plan: 'pro' };
      },
    }),
  );
  app.get('/big/:id', (_req, res) => {
    res.send('ok');
  });
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const user of ['throws', 'throws', 'props', 'props', 'ok']) expect(await get(base, '/big/1', user)).toBe(200);
  } finally {
    closeServer(server);
  }
  const rows = await recorded();
  expect(rows.map((r) => [r.distinctId, r.properties.plan, r.properties.route])).toEqual([['ok', 'pro', '/big/:id']]);
  expect(errors.map((e) => e.code).sort()).toEqual(['middleware_failed', 'missing_distinct_id']);
  expect(tally.stats().skipped).toBe(4);
});

it('refuses, at setup, a middleware without a distinctId function', () => {
  expect(() => expressMiddleware(tally, {} as never)).toThrow(expect.objectContaining({ code: 'invalid_options', message: expect.stringMatching(/distinctId must be a function/) }));
  expect(() => honoMiddleware({} as never, { distinctId: () => 'x' })).toThrow(expect.objectContaining({ code: 'invalid_options' }));
});

it('Express: a request whose client left is tracked with the status the app answered', async () => {
  const app = express();
  app.use(expressMiddleware(tally, { distinctId: () => 'leaver' }));
  let answered = false;
  app.get('/slow/:id', async (_req, res) => {
    await new Promise((r) => setTimeout(r, 300));
    answered = true;
    res.status(201).send('late');
  });
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  try {
    await expect(fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/slow/1`, { signal: AbortSignal.timeout(50) })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 400));
  } finally {
    closeServer(server);
  }
  expect(answered).toBe(true);
  expect((await recorded()).map((r) => [r.properties.route, r.properties.status])).toEqual([['/slow/:id', 201]]);
});

it('Connect / plain node:http: hooks the response itself (no Express prototypes), route (unmatched)', async () => {
  const mw = expressMiddleware(tally, { distinctId: (req) => req.headers['x-user'] as string });
  const server = createServer((req, res) => {
    mw(req as never, res, () => {
      res.statusCode = req.url === '/teapot' ? 418 : 200;
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    expect(await get(base, '/teapot', 'u1')).toBe(418);
    expect(await get(base, '/x', 'u2')).toBe(200);
  } finally {
    closeServer(server);
  }
  expect((await recorded()).map((r) => [r.distinctId, r.properties.route, r.properties.status])).toEqual([
    ['u1', UNMATCHED_ROUTE, 418],
    ['u2', UNMATCHED_ROUTE, 200],
  ]);
});
