/**
 * tally's fetch for posthog-node (src/sink/http-fetch.ts) against real node:http servers: bodies as
 * posthog-node sends them, answers as it reads them, aborts, and a kept-alive socket the server closed.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { nodeHttpFetch } from '../../src/sink/http-fetch';

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<string> {
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks), res));
  });
  s.keepAliveTimeout = 60_000;
  servers.push(s);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

test('sends string, bytes and Blob bodies with their headers, and reads status, text, json and headers', async () => {
  const seen: Array<{ method: string; path: string; type: string; encoding: string; length: string; body: string }> = [];
  const url = await serve((req, body, res) => {
    const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body).toString() : body.toString();
    seen.push({ method: req.method!, path: req.url!, type: String(req.headers['content-type']), encoding: String(req.headers['content-encoding'] ?? ''), length: String(req.headers['content-length']), body: text });
    res.writeHead(seen.length === 3 ? 400 : 200, { 'content-type': 'application/json', 'retry-after': '7' });
    res.end(JSON.stringify({ status: seen.length }));
  });
  const json = JSON.stringify({ api_key: 'phc_x', batch: [{ event: 'é', properties: {} }] });
  const a = await nodeHttpFetch(`${url}/batch/?compression=gzip-js`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
  const b = await nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: new Uint8Array(gzipSync(json)) });
  const c = await nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, body: new Blob([gzipSync(json)]) });
  expect([a.status, b.status, c.status]).toEqual([200, 200, 400]);
  expect(await a.json()).toEqual({ status: 1 });
  expect(await c.text()).toBe('{"status":3}');
  expect(c.headers.get('Retry-After')).toBe('7');
  expect(c.headers.get('x-missing')).toBeNull();
  expect(seen.map((s) => s.body)).toEqual([json, json, json]);
  expect(seen[0]).toMatchObject({ method: 'POST', path: '/batch/?compression=gzip-js', type: 'application/json', length: String(Buffer.byteLength(json)) });
  expect(seen.map((s) => s.encoding)).toEqual(['', 'gzip', 'gzip']);
});

test('an abort ends a request the server never answers, with the signal’s reason', async () => {
  const url = await serve(() => undefined); // reads the request, never answers
  const t0 = performance.now();
  await expect(nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: {}, body: '{}', signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ name: 'TimeoutError' });
  expect(performance.now() - t0).toBeLessThan(2_000);
  const ac = new AbortController();
  ac.abort();
  await expect(nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: {}, body: '{}', signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
});

test('a request on a kept-alive socket the server has closed is made once more on a new socket', async () => {
  let requests = 0;
  const sockets = new Set<unknown>();
  const url = await serve((req, _body, res) => {
    requests++;
    sockets.add(req.socket);
    // The second request arrives on the first one's kept-alive socket: drop it without an answer, as a
    // server that timed the idle socket out (or a frozen Lambda's dead socket) would.
    if (requests === 2) req.socket.destroy();
    else res.end('{"status":"Ok"}');
  });
  expect((await nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: {}, body: '{}' })).status).toBe(200);
  const second = await nodeHttpFetch(`${url}/batch/`, { method: 'POST', headers: {}, body: '{}' });
  expect(second.status).toBe(200);
  expect(requests).toBe(3);
  expect(sockets.size).toBe(2);
});

test('a refused connection rejects at once (posthog-node then retries or the outbox does)', async () => {
  const url = await serve(() => undefined);
  const port = new URL(url).port;
  await new Promise((r) => servers.pop()!.close(r));
  await expect(nodeHttpFetch(`http://127.0.0.1:${port}/batch/`, { method: 'POST', headers: {}, body: '{}' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});
