/**
 * Child process: an API server that tracks each call it answers, in one of the ways benchmark 5
 * compares. Each POST is one API call (`{"distinctId","route"}`), answered 200 once it is "tracked":
 *
 *   none   — no tracking (the baseline the others are measured against);
 *   a      — every call captured with posthog-node, `flushAt: 1, flushInterval: 0` (the tutorial's
 *            first version: one PostHog request per call), answered without waiting for PostHog;
 *   b      — in-memory counting, flushed every 10 s as one `api_call_count` event per (user, event)
 *            (the node-cache + cron pattern: a Map and a timer, no extra packages);
 *   tally  — the call is sent to tally's ingest (one native event with a uuid) and answered once
 *            tally answered 2xx, i.e. once it is durably queued.
 *
 *   node scripts/run.mjs bench/naive-worker.ts --mode a --posthog <url> [--tally <url> --key <key>] [--flush-ms 10000]
 *
 * Sends `{ready, url}`; answers `cpu` with its CPU usage and the calls handled so far.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PostHog } from 'posthog-node';
import { argv, serveCommands } from './lib';

async function main(): Promise<void> {
  const a = argv();
  const mode = a.get('mode') ?? 'none';
  const posthogUrl = a.get('posthog') ?? '';
  let handled = 0;
  let track: (distinctId: string, route: string) => Promise<boolean>;

  if (mode === 'none') {
    track = async () => true;
  } else if (mode === 'a') {
    const ph = new PostHog('phc_naive_a', { host: posthogUrl, flushAt: 1, flushInterval: 0 });
    ph.on('error', () => undefined);
    track = async (distinctId, route) => {
      ph.capture({ distinctId, event: 'api_call', properties: { route } });
      return true;
    };
  } else if (mode === 'b') {
    const counts = new Map<string, number>();
    const ph = new PostHog('phc_naive_b', { host: posthogUrl, flushInterval: 0, flushAt: 100_000, maxQueueSize: 100_000 });
    ph.on('error', () => undefined);
    const flushMs = Number(a.get('flush-ms') ?? 10_000);
    setInterval(() => {
      const snapshot = [...counts];
      counts.clear();
      for (const [k, count] of snapshot) {
        const [distinctId, event] = k.split('\u0000') as [string, string];
        ph.capture({ distinctId, event: `${event}_count`, properties: { count } });
      }
      void ph.flush().catch(() => undefined);
    }, flushMs);
    track = async (distinctId) => {
      const k = `${distinctId}\u0000api_call`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
      return true;
    };
  } else if (mode === 'tally') {
    const t = new URL(a.get('tally') ?? '');
    const key = a.get('key') ?? '';
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    track = (distinctId, route) =>
      new Promise((resolve) => {
        const body = JSON.stringify({ distinctId, event: 'api_call', uuid: randomUUID(), properties: { route } });
        const req = request(
          { hostname: t.hostname, port: t.port, path: '/v1/usage', method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
          },
        );
        req.on('error', () => resolve(false));
        req.end(body);
      });
  } else throw new Error(`unknown mode ${mode}`);

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let call: { distinctId?: string; route?: string } = {};
      try {
        call = JSON.parse(Buffer.concat(chunks).toString()) as typeof call;
      } catch {
        /* answered 400 below */
      }
      if (!call.distinctId) {
        res.writeHead(400).end();
        return;
      }
      void track(call.distinctId, call.route ?? '/').then((ok) => {
        if (ok) handled++;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(ok ? '{"ok":true}' : '{"ok":false}');
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serveCommands({ cpu: () => ({ cpu: process.cpuUsage(), handled }) }, () => new Promise<void>((r) => server.close(() => r())));
  process.send?.({ ready: true, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
