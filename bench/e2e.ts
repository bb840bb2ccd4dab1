/**
 * Benchmark 4: end to end on the local stack, with `npm start`'s defaults (HTTP front → ingest → fauxqs
 * → poller → aggregator → dynalite; the roll-up every 2 s; PostHog via posthog-node to the stand-in).
 * The stack runs in a child process (its CPU is measured there), the load generator here, the PostHog
 * stand-in in a third process.
 *
 * `single`: one event per request, as fast as the stack answers (32 connections, 10 s) — ingest's ceiling;
 * `single-paced`: 1,500 requests/s for 30 s, the end-to-end goal; `batch100`: 100 events per request
 * paced at 167 requests/s = 16,700 events/s = 1M calls/minute, for 30 s. While the load runs, the bench
 * asks the stack every second how many messages the event source deleted — a message is deleted once the
 * aggregator run that counted it committed; each request is one message — (over IPC: asking the query API
 * instead would load the one-request-at-a-time dynalite it measures): the **backlog** (acknowledged, not
 * yet counted) shows whether aggregation keeps up — bounded by about the event source's batching window
 * (1 s) plus one run when it does, growing with the run's length when it does not. After the load
 * stops, the bench waits until the queue is drained and checks zero loss: the stored total equals the
 * acknowledged calls; then, once every window is rolled up, that PostHog batch events carry as many
 * calls. Traffic: 2,000 users, Zipf 1.1.
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
  /** Acknowledged minus counted calls, sampled every second during the load: largest, and at the end. */
  backlogMaxCalls: number;
  backlogEndCalls: number;
  /** The backlog at the end in seconds of the load's rate (aggregation kept up: ≤ 2 s). */
  backlogEndSeconds: number;
  /** Calls counted per second from the first to the last sample during the load. */
  countedPerSecond: number;
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
    const rows: E2eRow[] = [];
    const events: string[] = [];
    const plan: Array<[E2eRow['scenario'], number, number, number | undefined, number]> = [
      ['single', 1, 32, undefined, o.quick ? 1500 : 10_000],
      ['single-paced', 1, 32, o.quick ? 300 : 1500, o.quick ? 1500 : 30_000],
      ['batch100', 100, 8, 167, o.quick ? 1500 : 30_000],
    ];
    for (const [scenario, per, concurrency, rate, durationMs] of plan) {
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
      // The backlog, every second: acknowledged so far vs counted (messages the event source deleted).
      type Poller = { poller: { deleted: number } };
      const deleted0 = (await stack.call<Poller>('stats')).poller.deleted;
      let acked = 0;
      const samples: Array<{ t: number; acked: number; stored: number }> = [];
      const l0 = performance.now();
      let sampling: Promise<void> | undefined;
      const sampler = setInterval(() => {
        if (sampling) return; // one question at a time
        const a = acked;
        const t = performance.now() - l0;
        sampling = stack
          .call<Poller>('stats')
          .then((x) => void samples.push({ t, acked: a, stored: (x.poller.deleted - deleted0) * per }))
          .catch(() => undefined)
          .finally(() => (sampling = undefined));
      }, 1000);
      const load = await runLoad({
        url,
        path: '/v1/usage',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: (i) => pool[i % pool.length]!,
        concurrency,
        durationMs,
        ...(rate ? { rate } : {}),
        onResult: (_i, status) => {
          if (status >= 200 && status < 300) acked += per;
        },
        progressEveryMs: o.quick ? 0 : 5000,
        label: `e2e ${scenario}`,
      });
      clearInterval(sampler);
      await sampling;
      const backlog = samples.map((x) => x.acked - x.stored);
      const first = samples[0];
      const last = samples.at(-1);
      const countedPerSecond = first && last && last.t > first.t ? ((last.stored - first.stored) / (last.t - first.t)) * 1000 : 0;
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
        backlogMaxCalls: backlog.length ? Math.max(...backlog) : 0,
        backlogEndCalls: backlog.at(-1) ?? 0,
        backlogEndSeconds: round((backlog.at(-1) ?? 0) / Math.max(1, (acknowledged / load.wallMs) * 1000), 2),
        countedPerSecond: round(countedPerSecond, 0),
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
          `${row.failed} failed; backlog at the end ${row.backlogEndCalls} calls (${row.backlogEndSeconds} s of load, max ${row.backlogMaxCalls}), counted ${row.countedPerSecond}/s during the load; ` +
          `drained ${row.drainMs} ms later (${row.endToEndEventsPerSecond} events/s end to end); acknowledged ${acknowledged}, stored ${stored} → lost ${row.lost}`,
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
