/**
 * The flag routes: matching, the tally key checked and swapped for the PostHog project key, bodies
 * decoded as capture bodies are, headers and query forwarded, PostHog's answer returned, and a dead
 * PostHog bounded (504/502).
 */
import { gzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { HttpError } from '../../src/errors';
import { memoryAuth } from '../support/projects';
import { createFlagProxy, matchFlagRoute, unavailableFlagProxy } from '../../src/http/flag-proxy';

const KEY = 'tally_key_0123456789';

function apiEvent(method: string, path: string, opts: { query?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): APIGatewayProxyEventV2 {
  const binary = Buffer.isBuffer(opts.body);
  const query = opts.query ?? '';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    headers: opts.headers ?? {},
    queryStringParameters: query ? Object.fromEntries(new URLSearchParams(query)) : undefined,
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'test' }, requestId: 'r', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0, accountId: '0', apiId: 'a', domainName: 'd', domainPrefix: 'd' },
    body: opts.body === undefined ? undefined : binary ? (opts.body as Buffer).toString('base64') : (opts.body as string),
    isBase64Encoded: binary,
  };
}

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

function fakeFetch(answer: (s: Seen) => Response | Promise<Response> = () => new Response('{"flags":{}}', { status: 200, headers: { 'content-type': 'application/json', etag: '"v1"' } })) {
  const seen: Seen[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const s: Seen = { url, method: String(init.method), headers: init.headers as Record<string, string>, body: init.body as string | undefined };
    seen.push(s);
    if (init.signal?.aborted) throw init.signal.reason;
    return answer(s);
  }) as unknown as typeof fetch;
  return { f, seen };
}

const { auth } = memoryAuth([KEY]);
const proxyWith = (f: typeof fetch, timeoutMs = 1000) => createFlagProxy({ authenticate: (k) => auth.authenticate(k, 'ingest'), host: 'https://ph.example/', projectKey: 'phc_real', timeoutMs, fetch: f });

describe('matchFlagRoute', () => {
  it('matches the three routes with and without the trailing slash', () => {
    expect(matchFlagRoute('POST', '/flags')).toBe('flags');
    expect(matchFlagRoute('post', '/flags/')).toBe('flags');
    expect(matchFlagRoute('GET', '/flags/definitions')).toBe('definitions');
    expect(matchFlagRoute('GET', '/flags/definitions/')).toBe('definitions');
    expect(matchFlagRoute('POST', '/decide/')).toBe('decide');
    expect(matchFlagRoute('GET', '/flags')).toBeUndefined();
    expect(matchFlagRoute('POST', '/flags/definitions')).toBeUndefined();
    expect(matchFlagRoute('POST', '/batch/')).toBeUndefined();
  });
});

describe('flag proxy', () => {
  it('/flags/: checks the tally token, forwards PostHog’s project key, the query (without compression) and the answer', async () => {
    const { f, seen } = fakeFetch();
    const body = JSON.stringify({ token: KEY, distinct_id: 'u1', person_properties: { plan: 'pro' } });
    const r = await proxyWith(f)(apiEvent('POST', '/flags/', { query: 'v=2&compression=base64', body: Buffer.from(body).toString('base64'), headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'posthog-node/5.70.0' } }), 'flags');
    expect(r).toEqual({ statusCode: 200, headers: { 'content-type': 'application/json', etag: '"v1"' }, body: '{"flags":{}}' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe('https://ph.example/flags/?v=2');
    expect(seen[0]!.method).toBe('POST');
    expect(JSON.parse(seen[0]!.body!)).toEqual({ token: 'phc_real', distinct_id: 'u1', person_properties: { plan: 'pro' } });
    expect(seen[0]!.headers).toEqual({ 'content-type': 'application/json', 'user-agent': 'posthog-node/5.70.0' });
  });

  it('/decide/: gzip bodies (as API Gateway passes them, base64) and api_key are handled', async () => {
    const { f, seen } = fakeFetch();
    const gz = gzipSync(JSON.stringify({ api_key: KEY, distinct_id: 'u2' }));
    const r = await proxyWith(f)(apiEvent('POST', '/decide', { query: 'v=3', body: gz }), 'decide');
    expect(r.statusCode).toBe(200);
    expect(seen[0]!.url).toBe('https://ph.example/decide/?v=3');
    expect(JSON.parse(seen[0]!.body!)).toEqual({ api_key: 'phc_real', token: 'phc_real', distinct_id: 'u2' });
  });

  it('the key may come as Bearer; it is not forwarded to PostHog', async () => {
    const { f, seen } = fakeFetch();
    await proxyWith(f)(apiEvent('POST', '/flags', { body: '{"distinct_id":"u"}', headers: { authorization: `Bearer ${KEY}` } }), 'flags');
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(JSON.parse(seen[0]!.body!).token).toBe('phc_real');
  });

  it('/flags/definitions: token swapped, the client’s personal key and ETag forwarded, 304 passed back', async () => {
    const { f, seen } = fakeFetch(() => new Response(null, { status: 304, headers: { etag: '"v1"' } }));
    const r = await proxyWith(f)(apiEvent('GET', '/flags/definitions', { query: `token=${KEY}&send_cohorts`, headers: { authorization: 'Bearer phx_personal', 'if-none-match': '"v1"' } }), 'definitions');
    expect(r.statusCode).toBe(304);
    expect(r.headers).toMatchObject({ etag: '"v1"' });
    expect(seen[0]!.url).toBe('https://ph.example/flags/definitions?token=phc_real&send_cohorts');
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.headers).toEqual({ authorization: 'Bearer phx_personal', 'if-none-match': '"v1"' });
  });

  it('an unknown or missing key is 401 and nothing is forwarded', async () => {
    const { f, seen } = fakeFetch();
    const p = proxyWith(f);
    await expect(p(apiEvent('GET', '/flags/definitions', { query: 'token=phc_someone_else&send_cohorts' }), 'definitions')).rejects.toMatchObject({ statusCode: 401 });
    await expect(p(apiEvent('GET', '/flags/definitions', { query: 'send_cohorts' }), 'definitions')).rejects.toMatchObject({ statusCode: 401 });
    await expect(p(apiEvent('POST', '/flags/', { body: '{"token":"nope-nope-nope","distinct_id":"u"}' }), 'flags')).rejects.toMatchObject({ statusCode: 401 });
    await expect(p(apiEvent('POST', '/flags/', { body: '[1]' }), 'flags')).rejects.toMatchObject({ statusCode: 400 });
    await expect(p(apiEvent('POST', '/flags/', { body: '{oops' }), 'flags')).rejects.toMatchObject({ statusCode: 400 });
    expect(seen).toHaveLength(0);
  });

  it('PostHog’s own errors come back as they are', async () => {
    const { f } = fakeFetch(() => new Response('{"type":"authentication_error"}', { status: 401, headers: { 'content-type': 'application/json' } }));
    const r = await proxyWith(f)(apiEvent('GET', '/flags/definitions', { query: `token=${KEY}` }), 'definitions');
    expect(r).toMatchObject({ statusCode: 401, body: '{"type":"authentication_error"}' });
  });

  it('a hanging PostHog is a 504 within the bound; an unreachable one a 502', async () => {
    const hang = (async (_url: string, init: RequestInit) =>
      new Promise((_, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason)))) as unknown as typeof fetch;
    const t0 = Date.now();
    const err = await proxyWith(hang, 150)(apiEvent('POST', '/flags/', { body: JSON.stringify({ token: KEY }) }), 'flags').catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ statusCode: 504, code: 'posthog_timeout' });
    const down = (async () => {
      throw new TypeError('fetch failed');
    }) as unknown as typeof fetch;
    await expect(proxyWith(down)(apiEvent('POST', '/flags/', { body: JSON.stringify({ token: KEY }) }), 'flags')).rejects.toMatchObject({ statusCode: 502, code: 'posthog_unreachable' });
  });

  it('without PostHog the routes answer 503 flags_unavailable', async () => {
    await expect(unavailableFlagProxy(apiEvent('POST', '/flags/'), 'flags')).rejects.toMatchObject({ statusCode: 503, code: 'flags_unavailable' });
    const { f, seen } = fakeFetch();
    const none = createFlagProxy({ authenticate: (k) => auth.authenticate(k, 'ingest'), timeoutMs: 1000, fetch: f });
    await expect(none(apiEvent('POST', '/flags/', { body: JSON.stringify({ token: KEY }) }), 'flags')).rejects.toMatchObject({ statusCode: 503, code: 'flags_unavailable' });
    expect(seen).toEqual([]);
  });

  it('a project with its own PostHog: forwarded there, with its project key', async () => {
    const own = memoryAuth([]);
    own.keyStore.projects.set('own', { id: 'own', ip: 'keep', origins: [], tokenVersion: 1, createdAt: 0, updatedAt: 0, posthog: { key: 'phc_own', host: 'https://eu.ph.example' } });
    own.keyStore.addKey('tally_own_key_0123', { project: 'own' });
    const { f, seen } = fakeFetch();
    const p = createFlagProxy({ authenticate: (k) => own.auth.authenticate(k, 'ingest'), host: 'https://ph.example/', projectKey: 'phc_real', timeoutMs: 1000, fetch: f });
    await p(apiEvent('POST', '/flags/', { body: JSON.stringify({ token: 'tally_own_key_0123', distinct_id: 'u' }) }), 'flags');
    await p(apiEvent('GET', '/flags/definitions', { query: 'token=tally_own_key_0123' }), 'definitions');
    expect(seen.map((x) => x.url)).toEqual(['https://eu.ph.example/flags/', 'https://eu.ph.example/flags/definitions?token=phc_own']);
    expect(JSON.parse(seen[0]!.body!).token).toBe('phc_own');
  });
});
