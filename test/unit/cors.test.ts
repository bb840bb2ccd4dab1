/**
 * CORS, implemented once (src/http/cors.ts) and used by both HTTP functions: preflights for allowed
 * origins, the allow header on every answer (errors too), nothing for other origins or without a list.
 * The CDK side (HTTP API corsPreflight from the same list) is asserted in test/cdk/stack.test.ts.
 */
import type { Context } from 'aws-lambda';
import { createIngestHandler } from '../../functions/ingest/handler';
import { createQueryHandler } from '../../functions/query/handler';
import { CORS_ALLOW_HEADERS, originAllowList } from '../../src/http/cors';
import type { UsageStore } from '../../src/store/types';
import { apiEvent } from '../support/api-event';

const KEY = 'tally_cors_key_123';
const ctx = {} as Context;
const cors = originAllowList(['https://app.example.com']);
const ingest = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, apiKeys: [KEY], cors });
const query = createQueryHandler({ store: {} as UsageStore, apiKeys: [KEY], cors, dimensions: [], shards: 8 });
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

  it('without a list the middleware does nothing: the preflight reaches routing (404)', async () => {
    const plain = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, apiKeys: [KEY] });
    const r = await plain(preflight('https://app.example.com'), ctx);
    expect(r.statusCode).toBe(404);
    expect(r.headers?.['access-control-allow-origin']).toBeUndefined();
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
    const any = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, apiKeys: [KEY], cors: originAllowList(['*']) });
    expect((await any(preflight('https://whoever.example'), ctx)).headers?.['access-control-allow-origin']).toBe('*');
  });
});
