import { Agent, request as httpRequest } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { type Front, MAX_PAYLOAD_BYTES, type RouteResult, startFront } from '../../local/apigw';

/** A raw HTTP/1.1 request, so repeated headers and odd bodies reach the server as written. */
function send(
  url: string,
  opts: { method?: string; path?: string; headers?: [string, string][]; body?: Buffer | string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    // A flat [name, value, name, value…] list keeps repeated headers as separate lines; Node then adds no Host.
    const headers = [['Host', u.host], ...(opts.headers ?? [])].flat();
    const req = httpRequest({ host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('API Gateway front (payload 2.0)', () => {
  let front: Front;
  let events: APIGatewayProxyEventV2[] = [];
  let answer: (e: APIGatewayProxyEventV2) => Promise<RouteResult> = async () => ({ statusCode: 200, body: '{}' });
  const errors: unknown[] = [];

  beforeAll(async () => {
    front = await startFront({
      port: 0,
      route: async (e) => {
        events.push(e);
        return answer(e);
      },
      onError: (err) => errors.push(err),
      // API Gateway's own behaviour alone: Lambda's 6 MB event limit is tested below.
      maxEventBytes: Infinity,
    });
  });
  beforeEach(() => {
    events = [];
    errors.length = 0;
    answer = async () => ({ statusCode: 200, body: '{}' });
  });
  afterAll(() => front?.stop());

  it('turns a JSON POST with a query string into a v2 event', async () => {
    const res = await send(front.url, {
      method: 'POST',
      path: '/v1/events?source=sdk&tag=a&tag=b%20c&empty=&flag',
      headers: [
        ['Content-Type', 'application/json'],
        ['X-Custom', 'one'],
        ['X-Custom', 'two'],
        ['Cookie', 'session=abc; theme=dark'],
        ['User-Agent', 'tally-test/1.0'],
        ['Authorization', 'Bearer tk_123456789'],
      ],
      body: '{"calls":[{"route":"/x","n":1}],"note":"héllo"}',
    });
    expect(res.status).toBe(200);
    expect(events).toHaveLength(1);
    const e = events[0];
    expect(e.version).toBe('2.0');
    expect(e.routeKey).toBe('$default');
    expect(e.rawPath).toBe('/v1/events');
    expect(e.rawQueryString).toBe('source=sdk&tag=a&tag=b%20c&empty=&flag');
    expect(e.queryStringParameters).toEqual({ source: 'sdk', tag: 'a,b c', empty: '', flag: '' });
    expect(e.cookies).toEqual(['session=abc', 'theme=dark']);
    expect(e.headers.cookie).toBeUndefined();
    expect(e.headers['x-custom']).toBe('one,two');
    expect(e.headers['content-type']).toBe('application/json');
    expect(e.headers.authorization).toBe('Bearer tk_123456789');
    expect(e.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(e.headers['x-amzn-trace-id']).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(Object.keys(e.headers).every((k) => k === k.toLowerCase())).toBe(true);
    expect(e.isBase64Encoded).toBe(false);
    expect(JSON.parse(e.body!)).toEqual({ calls: [{ route: '/x', n: 1 }], note: 'héllo' });
    expect(e.requestContext).toMatchObject({
      accountId: expect.any(String),
      apiId: expect.any(String),
      domainName: `127.0.0.1:${front.port}`,
      http: { method: 'POST', path: '/v1/events', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'tally-test/1.0' },
      routeKey: '$default',
      stage: '$default',
      time: expect.stringMatching(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/),
    });
    expect(Math.abs(e.requestContext.timeEpoch - Date.now())).toBeLessThan(5000);
    expect(res.headers['apigw-requestid']).toBe(e.requestContext.requestId);
  });

  it('passes a gzip body as base64, untouched', async () => {
    const json = JSON.stringify({ calls: Array.from({ length: 50 }, (_, i) => ({ route: `/r/${i}` })) });
    const gz = gzipSync(json);
    await send(front.url, {
      method: 'POST',
      path: '/v1/events',
      headers: [
        ['content-type', 'application/json'],
        ['content-encoding', 'gzip'],
      ],
      body: gz,
    });
    const e = events[0];
    expect(e.isBase64Encoded).toBe(true);
    expect(e.headers['content-encoding']).toBe('gzip');
    expect(Buffer.from(e.body!, 'base64').equals(gz)).toBe(true);
    expect(gunzipSync(Buffer.from(e.body!, 'base64')).toString()).toBe(json);
  });

  it.each([
    ['binary content type', [['content-type', 'application/octet-stream']] as [string, string][], Buffer.from('plain')],
    ['no content type', [] as [string, string][], Buffer.from('plain')],
    ['JSON type but invalid UTF-8', [['content-type', 'application/json']] as [string, string][], Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
  ])('sends base64 for %s', async (_label, headers, body) => {
    await send(front.url, { method: 'POST', path: '/x', headers, body });
    expect(events[0].isBase64Encoded).toBe(true);
    expect(Buffer.from(events[0].body!, 'base64').equals(body)).toBe(true);
  });

  it('has no body and no query parameters for a plain GET', async () => {
    await send(front.url, { path: '/health' });
    expect(events[0].body).toBeUndefined();
    expect(events[0].queryStringParameters).toBeUndefined();
    expect(events[0].cookies).toBeUndefined();
    expect(events[0].rawQueryString).toBe('');
  });

  it('writes the structured result back: status, headers, cookies, base64 body', async () => {
    answer = async () => ({
      statusCode: 202,
      headers: { 'X-Request-Id': 'r-1', 'Content-Type': 'application/octet-stream', 'X-Count': 3 },
      cookies: ['a=1; Path=/', 'b=2; HttpOnly'],
      body: Buffer.from([0, 1, 2, 255]).toString('base64'),
      isBase64Encoded: true,
    });
    const res = await send(front.url, { method: 'POST', path: '/x', headers: [['content-type', 'text/plain']], body: 'hi' });
    expect(res.status).toBe(202);
    expect(res.headers['x-request-id']).toBe('r-1');
    expect(res.headers['x-count']).toBe('3');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
    expect([...res.body]).toEqual([0, 1, 2, 255]);
    expect(events[0].body).toBe('hi');
  });

  it('infers a 200 JSON answer from a result without statusCode, as API Gateway does', async () => {
    answer = async () => ({ accepted: 3 });
    const res = await send(front.url, { path: '/x' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString())).toEqual({ accepted: 3 });
  });

  it('answers 500 {"message":"Internal Server Error"} when the handler throws', async () => {
    answer = async () => {
      throw new Error('kaput');
    };
    const res = await send(front.url, { path: '/x' });
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body.toString())).toEqual({ message: 'Internal Server Error' });
    expect(errors).toHaveLength(1);
    // Still serving afterwards.
    answer = async () => ({ statusCode: 204 });
    expect((await send(front.url, { path: '/x' })).status).toBe(204);
  });

  it('answers 500 for a malformed result', async () => {
    answer = async () => ({ statusCode: 42, body: 'x' });
    const res = await send(front.url, { path: '/x' });
    expect(res.status).toBe(500);
    expect(errors).toHaveLength(1);
  });

  it('answers 413 above the 10 MB payload limit and still accepts exactly 10 MB', async () => {
    const over = Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x61);
    const res = await send(front.url, { method: 'POST', path: '/x', headers: [['content-type', 'text/plain']], body: over });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body.toString())).toEqual({ message: 'Request Entity Too Large' });
    expect(events).toHaveLength(0);

    const exact = Buffer.alloc(MAX_PAYLOAD_BYTES, 0x61);
    const ok = await send(front.url, { method: 'POST', path: '/x', headers: [['content-type', 'text/plain']], body: exact });
    expect(ok.status).toBe(200);
    expect(events[0].body).toHaveLength(MAX_PAYLOAD_BYTES);
  });

  it('answers 413 for an oversized chunked body (no content-length)', async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const u = new URL(front.url);
      const req = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/x' }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode!));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x62);
      for (let i = 0; i < 11; i++) req.write(chunk);
      req.end();
    });
    expect(res).toBe(413);
    expect(events).toHaveLength(0);
  });

  it('keeps connections alive', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const u = new URL(front.url);
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: u.hostname, port: u.port, path: '/x', agent }, (res) => {
          ports.push(res.socket.localPort!);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    }
    agent.destroy();
    expect(new Set(ports).size).toBe(1);
  });
});

describe('API Gateway front with declared routes', () => {
  let front: Front;
  const seen: APIGatewayProxyEventV2[] = [];
  beforeAll(async () => {
    front = await startFront({
      port: 0,
      routes: ['POST /v1/events', 'GET /v1/usage/{apiKey}', 'GET /v1/usage/summary', 'ANY /files/{proxy+}'],
      route: async (e) => {
        seen.push(e);
        return { statusCode: 200, body: e.routeKey };
      },
    });
  });
  afterAll(() => front?.stop());

  it('fills routeKey and pathParameters, prefers literal routes, and 404s the rest', async () => {
    expect((await send(front.url, { method: 'POST', path: '/v1/events' })).body.toString()).toBe('POST /v1/events');
    expect((await send(front.url, { path: '/v1/usage/summary' })).body.toString()).toBe('GET /v1/usage/summary');
    await send(front.url, { path: '/v1/usage/k%201?from=2026-01-01' });
    expect(seen.at(-1)?.routeKey).toBe('GET /v1/usage/{apiKey}');
    expect(seen.at(-1)?.requestContext.routeKey).toBe('GET /v1/usage/{apiKey}');
    expect(seen.at(-1)?.pathParameters).toEqual({ apiKey: 'k 1' });
    await send(front.url, { method: 'DELETE', path: '/files/a/b/c.txt' });
    expect(seen.at(-1)?.pathParameters).toEqual({ proxy: 'a/b/c.txt' });
    // A greedy variable catches the trailing slash (what the stack's `<path>/{proxy+}` routes are for).
    await send(front.url, { method: 'PUT', path: '/files/' });
    expect(seen.at(-1)?.routeKey).toBe('ANY /files/{proxy+}');
    expect(seen.at(-1)?.pathParameters).toBeUndefined();
    expect((await send(front.url, { path: '/v1/usage/' })).status).toBe(404);

    const count = seen.length;
    const miss = await send(front.url, { method: 'GET', path: '/v1/events' });
    expect(miss.status).toBe(404);
    expect(JSON.parse(miss.body.toString())).toEqual({ message: 'Not Found' });
    expect(seen).toHaveLength(count);
  });
});

describe('Lambda’s 6 MB invocation payload, as the front door applies it', () => {
  let front: Front;
  let reached = 0;
  beforeAll(async () => {
    front = await startFront({ port: 0, route: async () => (reached++, { statusCode: 200, body: 'ok' }) });
  });
  afterAll(() => front?.stop());

  it('an event over 6,291,456 bytes never reaches the function; binary bodies count base64-encoded', async () => {
    const text = await fetch(`${front.url}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(6_300_000) });
    expect(text.status).toBe(413);
    expect(await text.json()).toEqual({ message: 'Request Too Long' });
    // 4.8 MB of binary: under API Gateway's 10 MB, over Lambda's limit once base64-encoded (6.4 MB).
    const binary = await fetch(`${front.url}/x`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4_800_000, 7) });
    expect(binary.status).toBe(413);
    expect(reached).toBe(0);
    const fits = await fetch(`${front.url}/x`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4_400_000, 7) });
    expect(fits.status).toBe(200);
  });
});
