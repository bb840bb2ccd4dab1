/**
 * Benchmark 4: end to end on the local stack, with `npm start`'s defaults (HTTP front → ingest → fauxqs
 * → poller → aggregator → dynalite; the roll-up every 2 s; PostHog via posthog-node to the stand-in).
 * The stack runs in a child process (its CPU is measured there), the load generator here, the PostHog
 * stand-in in a third process.
 *
 * `single`: one event per request, as fast as the stack answers (32 connections) — ingest's ceiling;
 * `single-paced`: 1,500 requests/s, the end-to-end goal; `batch100`: 100 events per request paced at
 * 167 requests/s = 16,700 events/s = 1M calls/minute. After the load stops, the bench waits until the
 * queue is drained (how far aggregation fell behind: it kept up when this is short) and checks zero
 * loss: the stored total equals the acknowledged calls; then, once every window is rolled up, that
 * PostHog batch events carry as many calls. Traffic: 2,000 users, Zipf 1.1.
 */
import { randomUUID } from 'node:crypto';
import type { PosthogStats } from './servers';
import { cpuMicros, percentiles, progress, round, spawnTs, traffic } from './lib';
import { runLoad } from './loadgen';

export interface E2eRow {
  scenario: 'single' | 'single-paced' | 'batch100';
  eventsPerRequest: number;
  concurrency: number;
  /** Paced to this many requests/s (undefined: as fast as answered). */
  targetRate?: number;
  /** Calls per second from the first request until the queue was drained (aggregation included). */
  endToEndEventsPerSecond: number;
  durationMs: number;
  requests: number;
  failed: number;
  requestsPerSecond: number;
  eventsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** After the load stopped: until the queue was empty and nothing in flight. */
  drainMs: number;
  /** Calls acknowledged (2xx) / found in DynamoDB / carried by PostHog batch events. */
  acknowledged: number;
  stored: number;
  posthogCalls: number;
  lost: number;
  /** Stack process CPU per request / per event (front, ingest, SQS client, poller, aggregator, dynalite). */
  stackCpuUsPerRequest: number;
  stackCpuUsPerEvent: number;
  /** Load generator CPU per request (this process). */
  clientCpuUsPerRequest: number;
}

export async function storedTotal(url: string, apiKey: string, event: string): Promise<number> {
  const qs = new URLSearchParams({ event, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
  const r = await fetch(`${url}/v1/usage?${qs}`, { headers: { authorization: `Bearer ${apiKey}` } });
  if (r.status !== 200) throw new Error(`query answered ${r.status}`);
  return ((await r.json()) as { total: number }).total;
}

export async function runE2eBench(o: { quick: boolean }): Promise<E2eRow[]> {
  const ph = spawnTs('bench/servers.ts', ['--posthog'], { label: 'posthog' });
  const { endpoint: posthogUrl } = await ph.waitFor<{ endpoint: string }>((m) => m.ready === true);
  // npm start's defaults, except shorter windows in --quick (so the roll-up check does not wait 2 minutes).
  const stack = spawnTs('bench/stack-worker.ts', ['--posthog', posthogUrl, ...(o.quick ? ['--window-seconds', '10', '--grace-seconds', '4', '--stale-seconds', '4'] : [])], { label: 'stack' });
  try {
    const { url, apiKey } = await stack.waitFor<{ url: string; apiKey: string }>((m) => m.ready === true, 60_000);
    const durationMs = o.quick ? 1500 : 10_000;
    const rows: E2eRow[] = [];
    const events: string[] = [];
    const plan: Array<[E2eRow['scenario'], number, number, number | undefined]> = [
      ['single', 1, 32, undefined],
      ['single-paced', 1, 32, o.quick ? 300 : 1500],
      ['batch100', 100, 8, 167],
    ];
    for (const [scenario, per, concurrency, rate] of plan) {
      const event = `e2e_${scenario}_${randomUUID().slice(0, 8)}`;
      const t = traffic(21, 2000);
      // Distinct bodies, built ahead so the generator spends its CPU on HTTP only.
      const pool = Array.from({ length: per === 1 ? 2000 : 200 }, () =>
        JSON.stringify(per === 1 ? t.native(event) : { batch: Array.from({ length: per }, () => t.native(event)) }),
      );
      // Warm the stack (JIT, connections) with a short burst of another event.
      await runLoad({ url, path: '/v1/usage', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: () => JSON.stringify({ distinctId: 'warm', event: 'warmup' }), concurrency: 8, count: o.quick ? 100 : 1000 });
      await stack.call('settle');

      progress(`e2e ${scenario}: ${per} event(s)/request, ${concurrency} connections, ${rate ? `paced at ${rate} requests/s` : 'as fast as answered'}, ${durationMs / 1000} s…`);
      const s0 = (await stack.call<{ cpu: NodeJS.CpuUsage }>('cpu')).cpu;
      const c0 = process.cpuUsage();
      const load = await runLoad({
        url,
        path: '/v1/usage',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: (i) => pool[i % pool.length]!,
        concurrency,
        durationMs,
        ...(rate ? { rate } : {}),
        progressEveryMs: o.quick ? 0 : 5000,
        label: `e2e ${scenario}`,
      });
      const clientCpu = cpuMicros(c0);
      const settled = await stack.call<{ settleMs: number }>('settle', { timeoutMs: 300_000 }, 320_000);
      const s1 = (await stack.call<{ cpu: NodeJS.CpuUsage }>('cpu')).cpu;
      const stackCpu = s1.user + s1.system - s0.user - s0.system;
      const stored = await storedTotal(url, apiKey, event);
      const posthogCalls = 0; // filled in once every window is rolled up, below
      const acknowledged = load.ok * per;
      const lp = percentiles(load.latencies);
      const row: E2eRow = {
        scenario,
        eventsPerRequest: per,
        concurrency,
        ...(rate ? { targetRate: rate } : {}),
        endToEndEventsPerSecond: round((acknowledged / (load.wallMs + settled.settleMs)) * 1000, 0),
        durationMs,
        requests: load.ok,
        failed: load.failed,
        requestsPerSecond: round((load.ok / load.wallMs) * 1000, 0),
        eventsPerSecond: round((acknowledged / load.wallMs) * 1000, 0),
        p50Ms: round(lp.p50, 2),
        p90Ms: round(lp.p90, 2),
        p99Ms: round(lp.p99, 2),
        drainMs: round(settled.settleMs, 0),
        acknowledged,
        stored,
        posthogCalls,
        lost: acknowledged - stored,
        stackCpuUsPerRequest: round(stackCpu / Math.max(1, load.ok), 1),
        stackCpuUsPerEvent: round(stackCpu / Math.max(1, acknowledged), 2),
        clientCpuUsPerRequest: round(clientCpu / Math.max(1, load.sent), 1),
      };
      rows.push(row);
      events.push(event);
      progress(
        `e2e ${scenario}: ${row.requestsPerSecond} requests/s, ${row.eventsPerSecond} events/s, p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms, ` +
          `${row.failed} failed; drained ${row.drainMs} ms later (${row.endToEndEventsPerSecond} events/s end to end); acknowledged ${acknowledged}, stored ${stored} → lost ${row.lost}`,
      );
    }
    // PostHog gets the batch events once their windows are rolled up (a window plus its grace later).
    progress('e2e: waiting until every window is rolled up and its batch events delivered…');
    const { rolledUpMs } = await stack.call<{ rolledUpMs: number }>('rolled-up', { timeoutMs: 300_000 }, 320_000);
    const stats = await ph.call<PosthogStats>('posthog-stats');
    rows.forEach((row, i) => (row.posthogCalls = stats.byEvent[`${events[i]}_batch`]?.calls ?? 0));
    progress(`e2e: rolled up ${round(rolledUpMs / 1000, 1)} s later; PostHog batch events carry ${rows.map((r) => r.posthogCalls).join(', ')} calls (acknowledged ${rows.map((r) => r.acknowledged).join(', ')})`);
    return rows;
  } finally {
    await stack.stop(30_000);
    await ph.stop();
  }
}
