/**
 * CORS, implemented once (src/http/cors.ts) and used by both HTTP functions: preflights for origins the
 * deployment or any project allows, the allow header on every answer (errors too), nothing for other
 * origins; the request itself only from an origin its own project allows (403, nothing queued). The CDK
 * side (preflights routed to ingest) is asserted in test/cdk/stack.test.ts.
 */
import type { Context } from 'aws-lambda';
import { createIngestHandler } from '../../functions/ingest/handler';
import { createQueryHandler } from '../../functions/query/handler';
import { CORS_ALLOW_HEADERS, OriginRules, originAllowList } from '../../src/http/cors';
import type { QueuedEvent } from '../../src/types';
import type { UsageStore } from '../../src/store/types';
import { apiEvent } from '../support/api-event';
import { memoryAuth, project } from '../support/projects';

const KEY = 'tally_cors_key_123';
const ctx = {} as Context;
const cors = originAllowList(['https://app.example.com']);
const ingest = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, ...memoryAuth([KEY]), cors });
const query = createQueryHandler({ store: {} as UsageStore, ...memoryAuth([KEY]), cors, dimensions: [], shards: 8 });
const preflight = (origin: string, path = '/batch/') =>
  apiEvent({ method: 'OPTIONS', path, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });

describe('preflight', () => {
  it('an allowed origin gets the methods, headers and max age', async () => {
    const r = await ingest(preflight('https://app.example.com'), ctx);
    expect(r.statusCode).toBe(204);
    expect(r.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET,POST,OPTIONS',
      'access-control-allow-headers': CORS_ALLOW_HEADERS.join(','),
      vary: 'origin',
    });
  });

  it('another origin gets no allow header (the browser refuses the call)', async () => {
    const r = await ingest(preflight('https://evil.example'), ctx);
    expect(r.statusCode).toBe(204);
    expect(r.headers?.['access-control-allow-origin']).toBeUndefined();
  });

  it('without any origins, a preflight is still answered by the function (origins change without a deploy), allowing nothing', async () => {
    const plain = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, ...memoryAuth([KEY]) });
    const r = await plain(preflight('https://app.example.com'), ctx);
    expect(r.statusCode).toBe(204);
    expect(r.headers?.['access-control-allow-origin']).toBeUndefined();
  });
});

describe('per project', () => {
  // Two projects, each with its own origin; the deployment-wide list adds one every project allows.
  const queued: QueuedEvent[] = [];
  const { auth, keyStore } = memoryAuth([]);
  keyStore.projects.set('shop', project('shop', { origins: ['https://shop.example.com'] }));
  keyStore.projects.set('blog', project('blog', { origins: ['https://blog.example.com'] }));
  keyStore.addKey('tally_shop_key_123', { project: 'shop', scopes: ['ingest', 'query'] });
  keyStore.addKey('tally_blog_key_123', { project: 'blog', scopes: ['ingest'] });
  let reads = 0;
  let t = 0;
  const rules = new OriginRules(['https://admin.example.com'], { projects: async () => (reads++, keyStore.listProjects()), now: () => t });
  const h = createIngestHandler({ queue: { send: async (e) => (queued.push(...e), { messages: 1, calls: 1 }) }, auth, cors: rules });
  const send = (key: string, origin?: string) => h(apiEvent({ path: '/v1/usage', body: '{"distinctId":"u"}', headers: { authorization: `Bearer ${key}`, ...(origin ? { origin } : {}) } }), ctx);

  it('preflights: allowed for an origin any project allows (the union), read once per TTL', async () => {
    for (const o of ['https://shop.example.com', 'https://blog.example.com', 'https://admin.example.com']) {
      expect((await h(preflight(o), ctx)).headers?.['access-control-allow-origin']).toBe(o);
    }
    expect((await h(preflight('https://evil.example'), ctx)).headers?.['access-control-allow-origin']).toBeUndefined();
    expect(reads).toBe(1);
    keyStore.projects.set('new', project('new', { origins: ['https://new.example.com'] }));
    expect((await h(preflight('https://new.example.com'), ctx)).headers?.['access-control-allow-origin']).toBeUndefined(); // cached union
    t += 30_000;
    expect((await h(preflight('https://new.example.com'), ctx)).headers?.['access-control-allow-origin']).toBe('https://new.example.com');
    expect(reads).toBe(2);
  });

  it('requests: only from an origin the key’s own project allows (or the deployment’s); else 403 and nothing queued', async () => {
    queued.length = 0;
    expect((await send('tally_shop_key_123', 'https://shop.example.com')).statusCode).toBe(202);
    expect((await send('tally_shop_key_123', 'https://admin.example.com')).statusCode).toBe(202);
    expect((await send('tally_shop_key_123')).statusCode).toBe(202); // no Origin: a server
    expect(queued).toHaveLength(3);
    const cross = await send('tally_shop_key_123', 'https://blog.example.com');
    expect(cross.statusCode).toBe(403);
    expect(JSON.parse(cross.body!)).toMatchObject({ error: 'forbidden', message: expect.stringContaining('not allowed for project shop') });
    // The browser may read why (the origin is in the union), but nothing was queued.
    expect(cross.headers?.['access-control-allow-origin']).toBe('https://blog.example.com');
    expect((await send('tally_blog_key_123', 'https://shop.example.com')).statusCode).toBe(403);
    expect(queued).toHaveLength(3);
    expect(queued.every((e) => e.project === 'shop')).toBe(true);
  });

  it('the union survives a failed read (preflights only let the browser ask; each request is checked)', async () => {
    let fail = false;
    let now = 0;
    const r = new OriginRules([], { projects: async () => (fail ? Promise.reject(new Error('down')) : [{ origins: ['https://a.example.com'] }]), now: () => now });
    expect(await r.allows('https://a.example.com')).toBe('https://a.example.com');
    fail = true;
    now += 60_000;
    expect(await r.allows('https://a.example.com')).toBe('https://a.example.com');
    expect(await r.allows('https://b.example.com')).toBeUndefined();
  });
});

describe('answers', () => {
  it('carry the allow header for an allowed origin, on success and on errors, in both functions', async () => {
    const ok = await ingest(apiEvent({ path: '/v1/usage', body: '{"distinctId":"u"}', headers: { origin: 'https://app.example.com', authorization: `Bearer ${KEY}` } }), ctx);
    expect(ok.statusCode).toBe(202);
    expect(ok.headers?.['access-control-allow-origin']).toBe('https://app.example.com');
    const denied = await ingest(apiEvent({ path: '/v1/usage', body: '{"distinctId":"u"}', headers: { origin: 'https://app.example.com' } }), ctx);
    expect(denied.statusCode).toBe(401);
    expect(denied.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'www-authenticate': 'Bearer' });
    const health = await query(apiEvent({ method: 'GET', path: '/health', headers: { origin: 'https://app.example.com' } }), ctx);
    expect(health.headers?.['access-control-allow-origin']).toBe('https://app.example.com');
    const other = await query(apiEvent({ method: 'GET', path: '/health', headers: { origin: 'https://evil.example' } }), ctx);
    expect(other.headers?.['access-control-allow-origin']).toBeUndefined();
  });

  it('`*` allows any origin', async () => {
    const any = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, ...memoryAuth([KEY]), cors: originAllowList(['*']) });
    expect((await any(preflight('https://whoever.example'), ctx)).headers?.['access-control-allow-origin']).toBe('*');
  });
});
