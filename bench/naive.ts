/**
 * Benchmark 5: tally next to the naive approaches, same run, same machine, same paced traffic.
 *
 * An API server (bench/naive-worker.ts, a child process) answers paced calls and tracks each one:
 * (a) posthog-node capture per call with flushAt 1, (b) in-memory counts flushed every 10 s,
 * (tally) each call sent to tally's ingest and answered after tally's 2xx; `none` is the baseline.
 * The load generator counts the calls the API acknowledged (2xx). Mid-run, the process holding the
 * tracking state gets SIGKILL: the API server for (a) and (b); for tally the API server and the whole
 * tally stack (ingest, queue, aggregator, DynamoDB emulator, all one process), which is then restarted
 * on its data directory and drained. What reached PostHog / the store is compared with what was
 * acknowledged.
 *
 * CPU per call is the API process's CPU over the paced window before the kill, less the baseline's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PosthogStats } from './servers';
import { storedTotal } from './e2e';
import { progress, round, sleep, spawnTs, traffic, type Child } from './lib';
import { runLoad } from './loadgen';

export type NaiveMode = 'none' | 'a' | 'b' | 'tally';

export interface NaiveRow {
  mode: NaiveMode;
  label: string;
  rate: number;
  /** Calls the API answered 2xx before the kill. */
  acknowledged: number;
  /** Calls that reached PostHog (a, b) or tally's store (tally) after the kill (and, for tally, the restart). */
  reached: number;
  /** Acknowledged calls never tracked. */
  lost: number;
  lostPercent: number;
  /** Calls tracked although their answer was lost in the kill (in flight). */
  trackedUnacknowledged: number;
  /** API-process CPU per call, baseline subtracted, µs. */
  cpuUsPerCall: number;
  /** PostHog capture requests per 1M calls, measured over the run before the kill. */
  posthogRequestsPer1M: number;
  /** PostHog events per 1M calls, measured. */
  posthogEventsPer1M: number;
  killAtMs: number;
  note: string;
}

const LABELS: Record<NaiveMode, string> = {
  none: 'baseline (no tracking)',
  a: '(a) posthog-node per call, flushAt 1',
  b: '(b) in-memory counts, flushed every 10 s',
  tally: 'tally (ingest 2xx before the API answers)',
};

interface ModeRun {
  acknowledged: number;
  handled: number;
  cpuUs: number;
  cpuCalls: number;
  stats: PosthogStats;
  reached: number;
  trackedUnacked: number;
}

async function runMode(mode: NaiveMode, o: { rate: number; killAtMs: number; cpuFromMs: number }): Promise<ModeRun> {
  // PostHog Cloud is an internet round trip away: 50 ms, for every mode alike.
  const ph = spawnTs('bench/servers.ts', ['--posthog', '--delay-ms', '50'], { label: `posthog-${mode}` });
  const children: Child[] = [ph];
  const dataDir = mode === 'tally' ? mkdtempSync(join(tmpdir(), 'tally-bench-kill-')) : undefined;
  try {
    const { endpoint: posthogUrl } = await ph.waitFor<{ endpoint: string }>((m) => m.ready === true);
    const workerArgs = ['--mode', mode, '--posthog', posthogUrl];
    let stack: Child | undefined;
    let tallyUrl = '';
    let apiKey = '';
    // Short visibility and stale periods (as in the e2e test), so that what the killed run had received
    // or claimed comes back within seconds rather than the deployed 365 s / 120 s.
    const stackArgs = ['--posthog', posthogUrl, '--data-dir', dataDir ?? '', '--batch-window-ms', '500', '--visibility-seconds', '10', '--stale-seconds', '8', '--grace-seconds', '16'];
    if (mode === 'tally') {
      stack = spawnTs('bench/stack-worker.ts', stackArgs, { label: 'tally' });
      children.push(stack);
      ({ url: tallyUrl, apiKey } = await stack.waitFor<{ url: string; apiKey: string }>((m) => m.ready === true, 60_000));
      workerArgs.push('--tally', tallyUrl, '--key', apiKey);
    }
    const api = spawnTs('bench/naive-worker.ts', workerArgs, { label: `api-${mode}` });
    children.push(api);
    const { url } = await api.waitFor<{ url: string }>((m) => m.ready === true);

    const t = traffic(31, 3000);
    const bodies = Array.from({ length: 4000 }, () => JSON.stringify({ distinctId: t.user(), route: t.route() }));
    let acknowledged = 0;
    let cpuStart: { cpu: NodeJS.CpuUsage; handled: number } | undefined;
    let cpuEnd: { cpu: NodeJS.CpuUsage; handled: number } | undefined;
    let killed = false;
    const cpuTimer = setTimeout(() => void api.call<{ cpu: NodeJS.CpuUsage; handled: number }>('cpu').then((r) => (cpuStart = r)), o.cpuFromMs);
    const endTimer = setTimeout(() => void api.call<{ cpu: NodeJS.CpuUsage; handled: number }>('cpu').then((r) => (cpuEnd = r)), o.killAtMs - 150);
    const killTimer = setTimeout(() => {
      killed = true;
      void api.kill9();
      if (stack) void stack.kill9();
    }, o.killAtMs);
    await runLoad({
      url,
      path: '/',
      headers: { 'content-type': 'application/json' },
      body: (i) => bodies[i % bodies.length]!,
      concurrency: 64,
      rate: o.rate,
      durationMs: o.killAtMs + 400,
      timeoutMs: 5000,
      onResult: (_i, status) => {
        if (status >= 200 && status < 300) acknowledged++;
      },
    });
    clearTimeout(cpuTimer);
    clearTimeout(endTimer);
    clearTimeout(killTimer);
    if (!killed) throw new Error('the load ended before the kill');
    await Promise.all([api.exited, stack?.exited]);
    if (!cpuStart || !cpuEnd) throw new Error('no CPU sample from the API process');
    const cpuUs = cpuEnd.cpu.user + cpuEnd.cpu.system - cpuStart.cpu.user - cpuStart.cpu.system;
    const cpuCalls = cpuEnd.handled - cpuStart.handled;

    let reached = 0;
    let stats: PosthogStats;
    if (mode === 'tally') {
      // Restart tally on the same data, let it drain what was queued, count.
      const again = spawnTs('bench/stack-worker.ts', stackArgs, { label: 'tally-restarted' });
      children.push(again);
      const r = await again.waitFor<{ url: string; apiKey: string }>((m) => m.ready === true, 60_000);
      await again.call('settle', { timeoutMs: 120_000 }, 130_000);
      reached = await storedTotal(r.url, r.apiKey, 'api_call');
      stats = await ph.call<PosthogStats>('posthog-stats');
      await again.stop();
    } else {
      await sleep(500);
      stats = await ph.call<PosthogStats>('posthog-stats');
      if (mode === 'a') reached = stats.byEvent.api_call?.events ?? 0;
      if (mode === 'b') reached = stats.byEvent.api_call_count?.count ?? 0;
    }
    return { acknowledged, handled: cpuEnd.handled, cpuUs, cpuCalls, stats, reached, trackedUnacked: Math.max(0, reached - acknowledged) };
  } finally {
    for (const c of children.reverse()) await c.stop(5000).catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runNaiveBench(o: { quick: boolean }): Promise<NaiveRow[]> {
  const rate = o.quick ? 300 : 1000;
  const rows: NaiveRow[] = [];
  const modes = ['none', 'a', 'b', 'tally'] as const;
  // (b) runs past its first 10 s flush in the full run, so the kill shows what one interval loses.
  const killAt = (mode: NaiveMode) => (o.quick ? 2000 : mode === 'b' ? 13_000 : 8000);
  const cpuFromMs = o.quick ? 700 : 2000;
  const runs = new Map<NaiveMode, ModeRun>();
  if (o.quick) {
    // --quick checks the harness only: the four runs share the machine at once (numbers not comparable).
    progress(`naive: all four modes at once, ${rate} calls/s each, kill -9 at ${killAt('a') / 1000} s…`);
    const all = await Promise.all(modes.map((m) => runMode(m, { rate, killAtMs: killAt(m), cpuFromMs })));
    modes.forEach((m, i) => runs.set(m, all[i]!));
  }
  let baselineUs = 0;
  for (const mode of modes) {
    const killAtMs = killAt(mode);
    if (!o.quick) progress(`naive ${LABELS[mode]}: ${rate} calls/s, kill -9 at ${killAtMs / 1000} s…`);
    const r = runs.get(mode) ?? (await runMode(mode, { rate, killAtMs, cpuFromMs }));
    const perCall = r.cpuCalls > 0 ? r.cpuUs / r.cpuCalls : 0;
    if (mode === 'none') baselineUs = perCall;
    const lost = mode === 'none' ? 0 : Math.max(0, r.acknowledged - Math.min(r.reached, r.acknowledged));
    const row: NaiveRow = {
      mode,
      label: LABELS[mode],
      rate,
      acknowledged: r.acknowledged,
      reached: mode === 'none' ? 0 : r.reached,
      lost,
      lostPercent: r.acknowledged ? round((lost / r.acknowledged) * 100, 1) : 0,
      trackedUnacknowledged: mode === 'none' ? 0 : r.trackedUnacked,
      cpuUsPerCall: mode === 'none' ? round(perCall, 1) : round(Math.max(0, perCall - baselineUs), 1),
      posthogRequestsPer1M: r.handled ? round((r.stats.requests / r.handled) * 1e6, 0) : 0,
      posthogEventsPer1M: r.handled ? round((r.stats.events / r.handled) * 1e6, 0) : 0,
      killAtMs,
      note:
        mode === 'a'
          ? 'events still queued in posthog-node or in flight die with the process'
          : mode === 'b'
            ? 'every count since the last flush dies with the process'
            : mode === 'tally'
              ? 'acknowledged = in SQS; the restarted stack counts all of it'
              : '',
    };
    rows.push(row);
    progress(
      `naive ${LABELS[mode]}: acknowledged ${row.acknowledged}, reached ${row.reached}, lost ${row.lost} (${row.lostPercent} %), ` +
        `${row.cpuUsPerCall} µs CPU/call${mode === 'none' ? ' (baseline)' : ' over baseline'}, ${row.posthogRequestsPer1M} PostHog requests per 1M calls`,
    );
  }
  return rows;
}
