/**
 * Benchmark 7: the client (`@tally/client`) in the API process, against a tally stand-in in another
 * process that counts uuids the way tally does (a request whose uuids it already took counts nothing):
 *
 *   a. CPU per `track()`, amortized over batching, gzip and sending: a burst of calls (and the same
 *      with the spool), and 1,000 calls/s paced, less the paced loop's own CPU;
 *   b. requests to tally per 1,000 tracked calls at 1,000 calls/s (default flushAt 1,000, 1 s);
 *   c. requests/s of the tutorial's Express app (examples/express) with the middleware vs without, both
 *      loaded at once on the same 2 cores (so both see the same machine), and their CPU per request;
 *   d. tracked calls lost when the API process is killed with SIGKILL at 1,000 calls/s, spool on / off
 *      (on: the API is started again on its spool and replays it);
 *   e. tally unreachable (connections refused) for 30 s at 1,000 calls/s, then back: lost and counted twice.
 *
 * `--quick` shrinks every part to a second or two (CI keeps the harness working; numbers not meaningful).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { progress, round, sleep, spawnTs, type Child } from './lib';
import type { Goal } from './report';

export interface TrackCpuRow {
  kind: 'burst' | 'burst-plain' | 'burst-spool' | 'paced';
  mode: string;
  calls: number;
  cpuUsPerCall: number;
  requests: number;
  requestsPer1000Calls: number;
  /** Bytes sent per call (gzip). */
  bytesPerCall: number;
}

export interface ThroughputResult {
  concurrency: number;
  roundMs: number;
  rounds: Array<{ variant: 'without' | 'with'; requestsPerSecond: number }>;
  withoutRps: number;
  withRps: number;
  /** with / without: the median of the rounds' ratios. */
  ratio: number;
  /** The API process's CPU per request over the rounds. */
  cpuUsPerRequest: { without: number; with: number };
}

export interface KillRow {
  spool: boolean;
  rate: number;
  flushIntervalMs: number;
  killAtMs: number;
  /** Calls the API answered 200 before it died. */
  answered: number;
  /** Calls tally (the stand-in) counted, after the restart for the spool. */
  counted: number;
  lost: number;
  countedTwice: number;
  replayed: number;
}

export interface OutageResult {
  rate: number;
  downMs: number;
  tracked: number;
  counted: number;
  lost: number;
  countedTwice: number;
  dropped: number;
  maxQueue: number;
  /** From tally's return until everything was delivered. */
  drainMs: number;
  retries: number;
}

export interface ClientResults {
  trackCpu: TrackCpuRow[];
  throughput: ThroughputResult;
  kill: KillRow[];
  outage: OutageResult;
}

const WORKER = 'bench/client-worker.ts';
const KEY = 'tally_bench_client_key';

async function startStandin(): Promise<{ child: Child; url: string }> {
  const child = spawnTs(WORKER, ['--standin', '--key', KEY], { label: 'tally-standin' });
  const { url } = await child.waitFor<{ url: string }>((m) => m.ready === true);
  return { child, url };
}

interface StandinStats {
  requests: number;
  events: number;
  counted: number;
  countedTwice: number;
  bytes: number;
}

interface TrackDone {
  calls: number;
  cpuUs: number;
  trackingCpuUs: number;
  pending: number;
  drainedAt: number;
  stats: { requests: number; retries: number; dropped: number; delivered: number; queued: number };
}

async function runTracker(url: string, standin: Child, args: string[], onStart?: () => Promise<void>): Promise<TrackDone> {
  const c = spawnTs(WORKER, ['--track', '--tally', url, '--key', KEY, ...args], { label: 'tracker' });
  try {
    await c.waitFor((m) => m.ready === true, 120_000);
    // The warm-up's requests are not the measured client's.
    await standin.call('reset');
    const done = c.waitFor<TrackDone>((m) => m.done === true, 300_000);
    await c.call('go');
    await onStart?.();
    return await done;
  } finally {
    await c.stop(5000);
  }
}

/** GET load on `/big/user-N`: `concurrency` keep-alive workers, paced to `rate` if given, for `durationMs` (or until `stop()`). */
async function getLoad(o: { url: string; concurrency: number; durationMs: number; rate?: number; onOk?: () => void; stopped?: () => boolean }): Promise<{ ok: number; failed: number; wallMs: number }> {
  const u = new URL(o.url);
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  let next = 0;
  let ok = 0;
  let failed = 0;
  const one = (i: number) =>
    new Promise<void>((res) => {
      const req = request({ hostname: u.hostname, port: u.port, path: `/big/user-${i % 1000}`, agent }, (r) => {
        r.resume();
        r.on('end', () => {
          if (r.statusCode === 200) {
            ok++;
            o.onOk?.();
          } else failed++;
          res();
        });
        r.on('error', () => {
          failed++;
          res();
        });
      });
      req.setTimeout(5000, () => req.destroy());
      req.on('error', () => {
        failed++;
        res();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        const now = performance.now();
        if (now >= end || o.stopped?.()) return;
        if (o.rate) {
          const due = ((now - t0) / 1000) * o.rate;
          if (next >= due) {
            await sleep(Math.max(1, ((next + 1) / o.rate) * 1000 - (now - t0)));
            continue;
          }
        }
        await one(next++);
      }
    }),
  );
  agent.destroy();
  return { ok, failed, wallMs: performance.now() - t0 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function trackCpu(url: string, standin: Child, quick: boolean): Promise<TrackCpuRow[]> {
  const rows: TrackCpuRow[] = [];
  const burst = quick ? 20_000 : 300_000;
  const row = async (kind: TrackCpuRow['kind'], mode: string, args: string[], baselineUs = 0) => {
    const d = await runTracker(url, standin, args);
    const s = await standin.call<StandinStats>('stats');
    const r: TrackCpuRow = {
      kind,
      mode,
      calls: d.calls,
      cpuUsPerCall: round(Math.max(0, d.cpuUs - baselineUs) / d.calls, 2),
      requests: s.requests,
      requestsPer1000Calls: round((s.requests / d.calls) * 1000, 2),
      bytesPerCall: round(s.bytes / d.calls, 1),
    };
    rows.push(r);
    progress(`client track(): ${mode}: ${r.cpuUsPerCall} µs CPU per call, ${r.requests} requests for ${r.calls} calls (${r.requestsPer1000Calls} per 1,000), ${r.bytesPerCall} bytes per call`);
    return d;
  };
  await row('burst', `burst of ${burst.toLocaleString('en-US')}`, ['--calls', String(burst)]);
  await row('burst-plain', `burst of ${burst.toLocaleString('en-US')}, no gzip`, ['--calls', String(burst), '--compression', 'none']);
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-spool-'));
  try {
    await row('burst-spool', `burst of ${burst.toLocaleString('en-US')}, spool on`, ['--calls', String(burst), '--spool', dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const seconds = quick ? 1.5 : 10;
  const dry = await runTracker(url, standin, ['--rate', '1000', '--seconds', String(seconds), '--dry']);
  await row('paced', '1,000 calls/s paced (less the loop alone)', ['--rate', '1000', '--seconds', String(seconds)], dry.cpuUs);
  return rows;
}

async function throughput(url: string, quick: boolean): Promise<ThroughputResult> {
  const concurrency = 16;
  const roundMs = quick ? 700 : 3000;
  const apis = {
    without: spawnTs(WORKER, ['--api', '--tally', url, '--key', KEY], { label: 'api-without' }),
    with: spawnTs(WORKER, ['--api', '--track', 'true', '--tally', url, '--key', KEY], { label: 'api-with' }),
  };
  type Cpu = { cpu: NodeJS.CpuUsage; handled: number };
  try {
    const urls = {
      without: (await apis.without.waitFor<{ url: string }>((m) => m.ready === true)).url,
      with: (await apis.with.waitFor<{ url: string }>((m) => m.ready === true)).url,
    };
    // Warm both (JIT, connections).
    await Promise.all([getLoad({ url: urls.without, concurrency, durationMs: 500 }), getLoad({ url: urls.with, concurrency, durationMs: 500 })]);
    const cpu0 = { without: await apis.without.call<Cpu>('cpu'), with: await apis.with.call<Cpu>('cpu') };
    // Both apps under load at once, each with its own connections: they see the same machine (other
    // engineers' jobs included), and the scheduler gives each an equal share, so the ratio of their
    // requests/s is the ratio of their CPU per request.
    const rounds: ThroughputResult['rounds'] = [];
    const ratios: number[] = [];
    for (let i = 0; i < (quick ? 1 : 6); i++) {
      const [wo, wi] = await Promise.all([getLoad({ url: urls.without, concurrency, durationMs: roundMs }), getLoad({ url: urls.with, concurrency, durationMs: roundMs })]);
      const rw = round((wo.ok / wo.wallMs) * 1000, 0);
      const ri = round((wi.ok / wi.wallMs) * 1000, 0);
      rounds.push({ variant: 'without', requestsPerSecond: rw }, { variant: 'with', requestsPerSecond: ri });
      ratios.push(ri / rw);
      progress(`client throughput: without the middleware ${rw} requests/s, with ${ri} (${round((ri / rw) * 100, 1)}%)`);
    }
    const cpu1 = { without: await apis.without.call<Cpu>('cpu'), with: await apis.with.call<Cpu>('cpu') };
    const perRequest = (k: 'without' | 'with') => {
      const us = cpu1[k].cpu.user + cpu1[k].cpu.system - cpu0[k].cpu.user - cpu0[k].cpu.system;
      return round(us / Math.max(1, cpu1[k].handled - cpu0[k].handled), 1);
    };
    const withoutRps = median(rounds.filter((x) => x.variant === 'without').map((x) => x.requestsPerSecond));
    const withRps = median(rounds.filter((x) => x.variant === 'with').map((x) => x.requestsPerSecond));
    return { concurrency, roundMs, rounds, withoutRps, withRps, ratio: round(median(ratios), 3), cpuUsPerRequest: { without: perRequest('without'), with: perRequest('with') } };
  } finally {
    await Promise.all([apis.without.stop(5000), apis.with.stop(5000)]);
  }
}

async function kill(url: string, standin: Child, spool: boolean, quick: boolean): Promise<KillRow> {
  const rate = 1000;
  const flushIntervalMs = 1000;
  const killAtMs = quick ? 1500 : 5000;
  await standin.call('reset');
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-kill-'));
  const args = ['--api', '--track', 'true', '--tally', url, '--key', KEY, '--flush-interval-ms', String(flushIntervalMs), ...(spool ? ['--spool', dir] : [])];
  try {
    const api = spawnTs(WORKER, args, { label: `api-kill-${spool ? 'spool' : 'nospool'}` });
    const { url: apiUrl } = await api.waitFor<{ url: string }>((m) => m.ready === true);
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      void api.kill9();
    }, killAtMs);
    const load = await getLoad({ url: apiUrl, concurrency: 16, durationMs: killAtMs + 2000, rate, stopped: () => killed });
    clearTimeout(timer);
    await api.exited;
    let replayed = 0;
    if (spool) {
      const again = spawnTs(WORKER, args, { label: 'api-kill-restarted' });
      await again.waitFor((m) => m.ready === true);
      for (let i = 0; i < 300; i++) {
        const { stats } = await again.call<{ stats: { queued: number; replayed: number } }>('stats');
        replayed = stats.replayed;
        if (stats.queued === 0) break;
        await sleep(100);
      }
      await again.stop(10_000);
    }
    const s = await standin.call<StandinStats>('stats');
    const row: KillRow = { spool, rate, flushIntervalMs, killAtMs, answered: load.ok, counted: s.counted, lost: Math.max(0, load.ok - s.counted), countedTwice: s.countedTwice, replayed };
    progress(`client kill -9, spool ${spool ? 'on' : 'off'}: answered ${row.answered}, counted ${row.counted}, lost ${row.lost}, counted twice ${row.countedTwice}${spool ? `, replayed ${row.replayed}` : ''}`);
    return row;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function outage(url: string, standin: Child, quick: boolean): Promise<OutageResult> {
  const rate = 1000;
  const downMs = quick ? 2000 : 30_000;
  const before = quick ? 500 : 2000;
  const after = quick ? 500 : 3000;
  let upAt = 0;
  const d = await runTracker(url, standin, ['--rate', String(rate), '--seconds', String((before + downMs + after) / 1000)], async () => {
    void (async () => {
      await sleep(before);
      await standin.call('down');
      progress(`client outage: tally unreachable for ${downMs / 1000} s…`);
      await sleep(downMs);
      await standin.call('up');
      upAt = Date.now();
    })();
  });
  const s = await standin.call<StandinStats>('stats');
  const r: OutageResult = {
    rate,
    downMs,
    tracked: d.calls,
    counted: s.counted,
    lost: d.calls - s.counted,
    countedTwice: s.countedTwice,
    dropped: d.stats.dropped,
    maxQueue: 100_000,
    drainMs: Math.max(0, d.drainedAt - upAt),
    retries: d.stats.retries,
  };
  progress(`client outage: tracked ${r.tracked}, counted ${r.counted}, lost ${r.lost}, counted twice ${r.countedTwice}, ${r.retries} retries, drained ${round(r.drainMs / 1000, 1)} s after tally came back`);
  return r;
}

export async function runClientBench(o: { quick: boolean }): Promise<ClientResults> {
  const { child: standin, url } = await startStandin();
  try {
    const trackRows = await trackCpu(url, standin, o.quick);
    const tp = await throughput(url, o.quick);
    const kills = [await kill(url, standin, true, o.quick), await kill(url, standin, false, o.quick)];
    const out = await outage(url, standin, o.quick);
    return { trackCpu: trackRows, throughput: tp, kill: kills, outage: out };
  } finally {
    await standin.stop(5000);
  }
}

const fmt = (v: number, d = 0): string => v.toLocaleString('en-US', { maximumFractionDigits: d });

/** The client's goals (issue 10's targets). */
export function clientGoals(c: ClientResults | undefined): Goal[] {
  if (!c) return [];
  const goals: Goal[] = [];
  const burst = c.trackCpu.find((x) => x.kind === 'burst');
  const plain = c.trackCpu.find((x) => x.kind === 'burst-plain');
  const spooled = c.trackCpu.find((x) => x.kind === 'burst-spool');
  const paced = c.trackCpu.find((x) => x.kind === 'paced');
  if (burst) {
    goals.push({
      goal: 'Client CPU per track() in the API process, amortized (batching, gzip, send)',
      target: '≤ 3 µs',
      measured: `${burst.cpuUsPerCall} µs (as fast as tally takes them)${paced ? ` · ${paced.cpuUsPerCall} µs at 1,000 calls/s` : ''}`,
      met: burst.cpuUsPerCall <= 3,
      note: `without gzip ${plain?.cpuUsPerCall ?? '?'} µs (${plain?.bytesPerCall ?? '?'} bytes per call instead of ${burst.bytesPerCall}); with the spool on ${spooled?.cpuUsPerCall ?? '?'} µs (one write(2) per call); at 1,000 calls/s the figure is the tracked loop's CPU less the same loop's without track(), on cold caches between wake-ups`,
    });
  }
  if (paced) {
    goals.push({ goal: 'Requests to tally per 1,000 tracked calls at 1,000 calls/s', target: '≤ 2', measured: `${paced.requestsPer1000Calls}`, met: paced.requestsPer1000Calls <= 2, note: 'defaults: flushAt 1,000, flushIntervalMs 1,000' });
  }
  const t = c.throughput;
  goals.push({
    goal: 'API requests/s with the middleware vs without (examples/express, same 2 cores)',
    target: '≥ 95%',
    measured: `${fmt(t.ratio * 100, 1)}% (median of the rounds' ratios; means ${fmt(t.withRps)} vs ${fmt(t.withoutRps)} requests/s; CPU per request ${t.cpuUsPerRequest.with} vs ${t.cpuUsPerRequest.without} µs)`,
    met: t.ratio >= 0.95,
    note: `both apps loaded at once, ${t.concurrency} keep-alive connections each, from a load generator on the same cores; median of ${t.rounds.length / 2} rounds of ${t.roundMs / 1000} s`,
  });
  const on = c.kill.find((k) => k.spool);
  const off = c.kill.find((k) => !k.spool);
  if (on && off) {
    const bound = (off.rate * off.flushIntervalMs) / 1000;
    goals.push({
      goal: 'Tracked calls lost on kill -9 of the API process: spool on / off',
      target: `0 / ≤ ${fmt(bound)} (the flush interval's worth)`,
      measured: `${fmt(on.lost)} of ${fmt(on.answered)} / ${fmt(off.lost)} of ${fmt(off.answered)}`,
      met: on.lost === 0 && on.countedTwice === 0 && off.lost <= bound,
      note: `${fmt(off.rate)} calls/s, killed at ${off.killAtMs / 1000} s; with the spool the restarted API replayed ${fmt(on.replayed)} calls; counted twice ${on.countedTwice} / ${off.countedTwice}`,
    });
  }
  const o = c.outage;
  goals.push({
    goal: `tally unreachable for ${o.downMs / 1000} s, then back`,
    target: '0 lost (within the buffer bound), 0 counted twice',
    measured: `${o.lost} lost, ${o.countedTwice} counted twice of ${fmt(o.tracked)} tracked`,
    met: o.lost === 0 && o.countedTwice === 0,
    note: `${o.rate} calls/s; ${o.retries} retries; everything delivered ${fmt(o.drainMs / 1000, 1)} s after tally came back; buffer bound ${fmt(o.maxQueue)} events, dropped ${o.dropped}`,
  });
  return goals;
}

/** The client's table (Markdown). */
export function clientTable(c: ClientResults, table: (head: string[], rows: Array<Array<string | number>>) => string): string {
  const out: string[] = [];
  out.push('\n7. Client (@tally/client in the API process; tally = a stand-in in another process that counts uuids as tally does)');
  out.push(table(['track()', 'calls', 'CPU µs/call', 'requests', 'per 1,000 calls', 'bytes/call'], c.trackCpu.map((x) => [x.mode, x.calls, x.cpuUsPerCall, x.requests, x.requestsPer1000Calls, x.bytesPerCall])));
  out.push(
    table(
      ['examples/express, both loaded at once', 'requests/s (median)', 'CPU µs/request', 'rounds'],
      [
        ['without the middleware', c.throughput.withoutRps, c.throughput.cpuUsPerRequest.without, c.throughput.rounds.filter((x) => x.variant === 'without').map((x) => x.requestsPerSecond).join(', ')],
        [`with the middleware (${fmt(c.throughput.ratio * 100, 1)}%)`, c.throughput.withRps, c.throughput.cpuUsPerRequest.with, c.throughput.rounds.filter((x) => x.variant === 'with').map((x) => x.requestsPerSecond).join(', ')],
      ],
    ),
  );
  out.push(table(['kill -9 of the API', 'calls/s', 'killed at s', 'answered', 'counted', 'lost', 'counted twice', 'replayed'], c.kill.map((k) => [k.spool ? 'spool on' : 'spool off', k.rate, k.killAtMs / 1000, k.answered, k.counted, k.lost, k.countedTwice, k.spool ? k.replayed : ''])));
  const o = c.outage;
  out.push(table(['tally unreachable', 'calls/s', 'tracked', 'counted', 'lost', 'counted twice', 'dropped', 'retries', 'drained after s'], [[`${o.downMs / 1000} s`, o.rate, o.tracked, o.counted, o.lost, o.countedTwice, o.dropped, o.retries, round(o.drainMs / 1000, 1)]]));
  return out.join('\n');
}
