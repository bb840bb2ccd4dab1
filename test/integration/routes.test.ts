/**
 * One route table (src/http/route-table.ts), read by everything that routes: the ingest pipeline and the
 * flag proxy, the query handler, and the local front's API Gateway route keys (the CDK stack's are
 * asserted against the same table in test/cdk/stack.test.ts). For every route, with and without the
 * trailing slash: the function the table names serves it, the other function does not know it, and the
 * local front's routing (API Gateway route keys, `{proxy+}` included) lands on that function.
 */
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createIngestHandler } from '../../functions/ingest/handler';
import { createQueryHandler } from '../../functions/query/handler';
import { startFront, type Front } from '../../local/apigw';
import { allRoutes } from '../../src/http/all-routes';
import { apiGatewayRoutes, matchRoute, ROUTES, type RouteFunction } from '../../src/http/route-table';
import type { EventQueue } from '../../src/queue/types';
import type { UsageStore } from '../../src/store/types';
import { apiEvent } from '../support/api-event';
import { memoryAuth } from '../support/projects';

const ctx = {} as Context;
const queue: EventQueue = { send: async (events) => ({ messages: events.length ? 1 : 0, calls: 1 }) };
// The query handler only needs a store for the counts; an empty one answers every read with nothing.
const store = new Proxy({}, { get: () => async () => ({ items: [], total: 0 }) }) as unknown as UsageStore;
const handlers: Record<RouteFunction, (m: string, p: string) => Promise<APIGatewayProxyStructuredResultV2>> = {
  ingest: (method, path) => createIngestHandler({ queue, ...memoryAuth(['route-test-key']) })(apiEvent({ method, path, body: method === 'POST' ? '{}' : undefined }), ctx),
  query: (method, path) => createQueryHandler({ store, ...memoryAuth(['route-test-key']), dimensions: [], shards: 8 })(apiEvent({ method, path }), ctx),
};
const noRoute = (r: APIGatewayProxyStructuredResultV2) => r.statusCode === 404 && /no route/.test(String(r.body));

const forms = ROUTES.flatMap((r) => [
  [r.method, r.path, r.fn],
  [r.method, `${r.path}/`, r.fn],
] as const);

describe.each(forms)('%s %s', (method, path, fn) => {
  it(`matches its own row`, () => {
    expect(matchRoute(method, path)).toMatchObject({ method, fn });
  });
  it(`is served by ${fn}`, async () => {
    expect(noRoute(await handlers[fn](method, path))).toBe(false);
  });
  it(`is unknown to the other function`, async () => {
    expect(noRoute(await handlers[fn === 'ingest' ? 'query' : 'ingest'](method, path))).toBe(true);
  });
});

describe('the local front routes by the table’s API Gateway route keys', () => {
  let front: Front;
  const routes = apiGatewayRoutes();
  beforeAll(async () => {
    front = await startFront({ port: 0, routes: [...routes.keys()], route: (event) => ({ statusCode: 200, body: JSON.stringify({ fn: routes.get(event.routeKey), key: event.routeKey }) }) });
  });
  afterAll(() => front.stop());
  const call = async (method: string, path: string) => {
    const r = await fetch(`${front.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
    return { status: r.status, body: (await r.json()) as { fn?: string; key?: string; message?: string } };
  };

  it.each(forms)('%s %s reaches the function the table names', async (method, path, fn) => {
    expect((await call(method, path)).body.fn).toBe(fn);
  });

  it('the exact route wins over a {proxy+} catch-all: GET /v1/usage/users is its own route', async () => {
    expect((await call('GET', '/v1/usage/users')).body.key).toBe('GET /v1/usage/users');
    expect((await call('GET', '/v1/usage/other')).body.key).toBe('GET /v1/usage/{proxy+}');
  });

  it('a path no route declares is API Gateway’s 404, reaching no function', async () => {
    expect(await call('POST', '/nope')).toEqual({ status: 404, body: { message: 'Not Found' } });
    expect(await call('GET', '/batch')).toEqual({ status: 404, body: { message: 'Not Found' } });
  });
});

describe('one function behind the door (Function URL): src/http/all-routes.ts sends each route to its function’s handler', () => {
  const seen: string[] = [];
  const stub = (name: string) => async () => {
    seen.push(name);
    return { statusCode: 200, body: name };
  };
  const all = allRoutes({ ingest: stub('ingest'), query: () => stub('query') });

  it.each(forms)('%s %s → %s', async (method, path, fn) => {
    expect((await all(apiEvent({ method, path }), ctx)).body).toBe(fn);
  });

  it('preflights and unknown paths go to ingest, which answers them', async () => {
    expect((await all(apiEvent({ method: 'OPTIONS', path: '/v1/usage' }), ctx)).body).toBe('ingest');
    expect((await all(apiEvent({ method: 'GET', path: '/nope' }), ctx)).body).toBe('ingest');
  });
});
