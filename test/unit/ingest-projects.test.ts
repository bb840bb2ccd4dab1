/**
 * Ingest with projects (issue 9), through the real handler and Authenticator over keys held in memory, a
 * queue that records what it was given, and — for the error paths of the limits — stand-in limiters:
 * `POST /v1/tokens`; client tokens as keys (native and PostHog bodies); events for another distinct id
 * than the token's; the project set on every event; the IP policy; rate limit and quota answers (429,
 * nothing queued); limits that cannot be checked (admitted, counted). The same over the real wire
 * protocols: test/e2e/projects.test.ts.
 */
import { gzipSync } from 'node:zlib';
import type { Context } from 'aws-lambda';
import { createIngestHandler, type IngestHandlerDeps } from '../../functions/ingest/handler';
import { METRICS } from '../../src/observability';
import { verifyToken } from '../../src/projects/tokens';
import type { QueuedEvent } from '../../src/types';
import { apiEvent } from '../support/api-event';
import { memoryAuth, project } from '../support/projects';

const ctx = {} as Context;
const MASTER = Buffer.from('unit-test master secret, 32 bytes');
const ADMIN = 'tally_admin_key_123';
const INGEST = 'tally_ingest_key_123';
const QUERY = 'tally_query_key_123';

function harness(extra: Partial<IngestHandlerDeps> = {}, o: { ip?: 'keep' | 'anonymise' | 'drop'; now?: () => number } = {}) {
  const queued: QueuedEvent[] = [];
  const counted: Record<string, number> = {};
  const { auth, keyStore } = memoryAuth([], { tokenSecret: MASTER, ...(o.now ? { now: o.now } : {}) });
  keyStore.projects.set('shop', project('shop', { ip: o.ip ?? 'keep', rate: { perSecond: 10, burst: 20 }, monthlyQuota: 1000, origins: ['https://shop.example.com'] }));
  keyStore.projects.set('other', project('other'));
  keyStore.addKey(ADMIN, { project: 'shop', scopes: ['admin'] });
  keyStore.addKey(INGEST, { project: 'shop', scopes: ['ingest'] });
  keyStore.addKey(QUERY, { project: 'shop', scopes: ['query'] });
  keyStore.addKey('tally_other_key_123', { project: 'other', scopes: ['ingest'] });
  const add = (name: string, v: number) => void (counted[name] = (counted[name] ?? 0) + v);
  const metrics = { addMetric: (name: string, _u: unknown, v: number) => add(name, v), singleMetric: () => ({ addDimension: () => undefined, addMetric: (name: string, _u: unknown, v: number) => add(name, v) }) } as never;
  const h = createIngestHandler({ queue: { send: async (e) => (queued.push(...e), { messages: 1, calls: 1 }) }, auth, tokenSecret: MASTER, metrics, ...(o.now ? { now: o.now } : {}), ...extra });
  const call = async (path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}, sourceIp?: string) => {
    const r = await h(apiEvent({ path, body, headers, ...(sourceIp ? { sourceIp } : {}) }), ctx);
    return { status: r.statusCode!, headers: r.headers ?? {}, body: JSON.parse(r.body!) as Record<string, any> };
  };
  const mint = async (body: unknown, key = INGEST) => call('/v1/tokens', body === undefined ? undefined : JSON.stringify(body), { authorization: `Bearer ${key}` });
  return { call, mint, queued, counted, keyStore };
}

describe('POST /v1/tokens', () => {
  it('an ingest or admin key gets 201 {token, expiresAt}: 15 minutes by default, for its project, optionally one distinct id', async () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    const t = harness({}, { now: () => now });
    const a = await t.mint(undefined);
    expect(a.status).toBe(201);
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.body.expiresAt).toBe('2026-12-01T12:15:00.000Z');
    expect(verifyToken(a.body.token, MASTER, now)).toEqual({ project: 'shop', exp: now / 1000 + 900, version: 1 });
    const b = await t.mint({ distinctId: 42, ttlSeconds: 60 }, ADMIN);
    expect(b.status).toBe(201);
    expect(verifyToken(b.body.token, MASTER, now)).toMatchObject({ project: 'shop', distinctId: '42', exp: now / 1000 + 60 });
  });

  it('refuses bad bodies naming the field, a query-only key, a client token, no key; 503 without a master secret', async () => {
    const t = harness();
    const bad = await t.mint({ ttlSeconds: 901, distinctId: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: { path: string }) => d.path).sort()).toEqual(['distinctId', 'ttlSeconds']);
    expect((await t.mint({ ttl: 60 })).body.details[0].message).toContain('unknown field(s): ttl');
    expect((await t.mint({ ttlSeconds: 1.5 })).status).toBe(400);
    expect((await t.call('/v1/tokens', '[1]', { authorization: `Bearer ${INGEST}` })).status).toBe(400);
    expect((await t.mint({}, QUERY)).status).toBe(403);
    const token = (await t.mint({})).body.token as string;
    const again = await t.call('/v1/tokens', '{}', { authorization: `Bearer ${token}` });
    expect(again).toMatchObject({ status: 403, body: { error: 'forbidden', message: expect.stringContaining('cannot mint') } });
    expect((await t.call('/v1/tokens', '{}')).status).toBe(401);
    const { auth } = memoryAuth([INGEST]);
    const none = createIngestHandler({ queue: { send: async () => ({ messages: 1, calls: 1 }) }, auth });
    const r = await none(apiEvent({ path: '/v1/tokens', body: '{}', headers: { authorization: `Bearer ${INGEST}` } }), ctx);
    expect(r.statusCode).toBe(503);
    expect(JSON.parse(r.body!).error).toBe('tokens_unavailable');
  });
});

describe('client tokens as keys', () => {
  it('work as a Bearer key and as posthog-js’s api_key (gzip text/plain), from an allowed origin; events carry the project', async () => {
    const t = harness();
    const token = (await t.mint({ distinctId: 'user-7' })).body.token as string;
    expect((await t.call('/v1/usage', JSON.stringify({ distinctId: 'user-7' }), { authorization: `Bearer ${token}` })).status).toBe(202);
    const body = gzipSync(JSON.stringify([{ event: 'page_call', properties: { distinct_id: 'user-7', token, $lib: 'web' } }]));
    const js = await t.call('/e/', body, { 'content-type': 'text/plain', origin: 'https://shop.example.com' });
    expect(js).toMatchObject({ status: 200, body: { status: 1 } });
    expect(t.queued.map((e) => [e.project, e.distinct_id])).toEqual([
      ['shop', 'user-7'],
      ['shop', 'user-7'],
    ]);
    expect(JSON.stringify(t.queued)).not.toContain(token); // the token never travels on
  });

  it('events for another distinct id than the token’s: 403 naming them, nothing queued', async () => {
    const t = harness();
    const token = (await t.mint({ distinctId: 'user-7' })).body.token as string;
    const r = await t.call('/batch/', JSON.stringify({ api_key: token, batch: [{ event: 'a', distinct_id: 'user-7' }, { event: 'a', distinct_id: 'user-8' }] }));
    expect(r).toMatchObject({ status: 403, body: { error: 'forbidden', details: [{ path: 'batch.1.distinct_id' }] } });
    const n = await t.call('/v1/usage', JSON.stringify({ distinctId: 'someone' }), { authorization: `Bearer ${token}` });
    expect(n).toMatchObject({ status: 403, body: { details: [{ path: 'distinctId' }] } });
    expect(t.queued).toEqual([]);
  });

  it('an expired token: 401 token_expired; one from an origin its project does not allow: 403; nothing queued', async () => {
    let now = Date.parse('2026-12-01T12:00:00Z');
    const t = harness({}, { now: () => now });
    const token = (await t.mint({ ttlSeconds: 60 })).body.token as string;
    const ev = JSON.stringify({ api_key: token, event: 'a', distinct_id: 'u' });
    expect((await t.call('/capture/', ev, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await t.call('/capture/', ev, { origin: 'https://shop.example.com' })).status).toBe(200);
    t.queued.length = 0;
    now += 60_000;
    const r = await t.call('/capture/', ev, { origin: 'https://shop.example.com' });
    expect(r).toMatchObject({ status: 401, body: { error: 'token_expired' } });
    expect(t.queued).toEqual([]);
  });
});

describe('IP policy, before anything is queued', () => {
  const send = (t: ReturnType<typeof harness>) =>
    t.call('/batch/', JSON.stringify({ api_key: INGEST, batch: [{ event: 'a', distinct_id: 'u' }, { event: '$pageview', distinct_id: 'u', properties: { $ip: '2001:db8:abcd:12::1' } }] }), {}, '203.0.113.42');
  it('keep', async () => {
    const t = harness();
    await send(t);
    expect(t.queued.map((e) => [e.ip, e.properties.$ip])).toEqual([
      ['203.0.113.42', undefined],
      ['203.0.113.42', '2001:db8:abcd:12::1'],
    ]);
  });
  it('anonymise: IPv4 last octet zeroed, IPv6 to /48, in the event and in $ip', async () => {
    const t = harness({}, { ip: 'anonymise' });
    await send(t);
    expect(t.queued.map((e) => [e.ip, e.properties.$ip])).toEqual([
      ['203.0.113.0', undefined],
      ['203.0.113.0', '2001:db8:abcd::'],
    ]);
  });
  it('drop: no address at all', async () => {
    const t = harness({}, { ip: 'drop' });
    await send(t);
    expect(t.queued.every((e) => e.ip === undefined && !('$ip' in e.properties))).toBe(true);
    expect(JSON.stringify(t.queued)).not.toMatch(/203\.0\.113|2001:db8/);
  });
});

describe('limits', () => {
  it('rate limited: 429 rate_limited with Retry-After, nothing queued; the quota is checked first', async () => {
    const order: string[] = [];
    const t = harness({ rate: { admit: async () => (order.push('rate'), { admitted: false, retryAfterSeconds: 3 }) }, quota: { exceeded: async () => (order.push('quota'), false) } });
    const r = await t.call('/v1/usage', JSON.stringify({ distinctId: 'u' }), { authorization: `Bearer ${INGEST}` });
    expect(r).toMatchObject({ status: 429, headers: { 'retry-after': '3' }, body: { error: 'rate_limited' } });
    expect(order).toEqual(['quota', 'rate']);
    expect(t.queued).toEqual([]);
  });

  it('over quota: 429 quota_exceeded, nothing queued, and no rate tokens taken', async () => {
    let leased = 0;
    const t = harness({ rate: { admit: async () => (leased++, { admitted: true, retryAfterSeconds: 0 }) }, quota: { exceeded: async () => true } });
    const r = await t.call('/batch/', JSON.stringify({ api_key: INGEST, batch: [{ event: 'a', distinct_id: 'u' }] }));
    expect(r).toMatchObject({ status: 429, body: { error: 'quota_exceeded', message: expect.stringContaining('1000') } });
    expect(leased).toBe(0);
    expect(t.queued).toEqual([]);
  });

  it('limits that cannot be checked (DynamoDB down or slow) admit the request and are counted', async () => {
    const t = harness({
      limitTimeoutMs: 50,
      rate: { admit: () => new Promise(() => undefined) }, // never answers: cut by the bound
      quota: { exceeded: async () => Promise.reject(new Error('DynamoDB unreachable')) },
    });
    const r = await t.call('/v1/usage', JSON.stringify({ distinctId: 'u' }), { authorization: `Bearer ${INGEST}` });
    expect(r.status).toBe(202);
    expect(t.counted[METRICS.LimitsUnavailable]).toBeGreaterThanOrEqual(1);
  });

  it('a project without limits is never asked', async () => {
    let asked = 0;
    const t = harness({ rate: { admit: async () => (asked++, { admitted: false, retryAfterSeconds: 1 }) }, quota: { exceeded: async () => (asked++, true) } });
    expect((await t.call('/v1/usage', JSON.stringify({ distinctId: 'u' }), { authorization: 'Bearer tally_other_key_123' })).status).toBe(202);
    expect(asked).toBe(0);
    expect(t.queued[0]!.project).toBe('other');
  });
});

describe('which project', () => {
  it('a header key and a body key of different projects: 403, nothing queued', async () => {
    const t = harness();
    const r = await t.call('/batch/', JSON.stringify({ api_key: 'tally_other_key_123', batch: [{ event: 'a', distinct_id: 'u' }] }), { authorization: `Bearer ${INGEST}` });
    expect(r).toMatchObject({ status: 403, body: { message: expect.stringContaining('different projects') } });
    expect(t.queued).toEqual([]);
  });

  it('a key without the ingest scope: 403, nothing queued', async () => {
    const t = harness();
    expect((await t.call('/v1/usage', JSON.stringify({ distinctId: 'u' }), { authorization: `Bearer ${QUERY}` })).status).toBe(403);
    expect(t.queued).toEqual([]);
  });
});
