/**
 * A small HTTP load generator for 127.0.0.1 (keep-alive `node:http`): `concurrency` workers send
 * requests back to back, optionally paced to `rate` requests/s, until `durationMs` or `count`.
 * Latency is measured per request with `performance.now()`. Bounded in count and time by construction.
 */
import { Agent, request } from 'node:http';
import { progress } from './lib';

export interface LoadOptions {
  url: string;
  path: string;
  headers: Record<string, string>;
  /** Body of request `i` (same i → same body, so a retry can resend it). */
  body: (i: number) => string | Buffer;
  concurrency: number;
  /** Stop after this long (always bounded: default 60 s). */
  durationMs?: number;
  /** Stop after this many requests. */
  count?: number;
  /** Pace to at most this many requests per second overall. */
  rate?: number;
  /** Called for every answered or failed request. */
  onResult?: (i: number, status: number) => void;
  /** Progress line every this many ms (0: none). */
  progressEveryMs?: number;
  label?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  /** Latencies of 2xx answers, ms. */
  latencies: number[];
  wallMs: number;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const u = new URL(o.url);
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const durationMs = Math.min(o.durationMs ?? 60_000, 10 * 60_000);
  const count = o.count ?? Number.POSITIVE_INFINITY;
  const res: LoadResult = { sent: 0, ok: 0, failed: 0, statuses: {}, latencies: [], wallMs: 0 };
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  let next = 0;
  let stopped = false;

  const once = (i: number): Promise<number> =>
    new Promise((resolve) => {
      const body = o.body(i);
      const req = request(
        {
          hostname: u.hostname,
          port: u.port,
          path: o.path,
          method: 'POST',
          agent,
          timeout: o.timeoutMs ?? 30_000,
          headers: { ...o.headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
          r.on('error', () => resolve(0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(0));
      req.end(body);
    });

  const worker = async (): Promise<void> => {
    for (;;) {
      if (stopped || next >= count || performance.now() >= deadline) return;
      const i = next++;
      if (o.rate) {
        const slot = t0 + (i / o.rate) * 1000;
        const wait = slot - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        if (performance.now() >= deadline) return;
      }
      res.sent++;
      const s = performance.now();
      const status = await once(i);
      const ms = performance.now() - s;
      res.statuses[status] = (res.statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        res.ok++;
        res.latencies.push(ms);
      } else res.failed++;
      o.onResult?.(i, status);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  if (o.progressEveryMs) {
    let last = 0;
    let lastT = t0;
    timer = setInterval(() => {
      const now = performance.now();
      progress(`  ${o.label ?? 'load'}: ${((now - t0) / 1000).toFixed(0)} s, ${Math.round(((res.ok - last) * 1000) / (now - lastT))} ok/s, ${res.ok} ok, ${res.failed} failed`);
      last = res.ok;
      lastT = now;
    }, o.progressEveryMs);
  }
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    stopped = true;
    if (timer) clearInterval(timer);
    agent.destroy();
  }
  res.wallMs = performance.now() - t0;
  return res;
}
