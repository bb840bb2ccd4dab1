/**
 * Benchmark 6: memory under sustained load. The local stack with `npm start`'s defaults (its data in a
 * directory, as `npm start` keeps it) takes single-event requests paced at 1,500/s for 10 minutes; its
 * resident set size is sampled every 10 s, then once more after a minute idle. It holds steady when
 * the second five minutes add little to the first (no state grows with the length of the load).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storedTotal } from './e2e';
import { progress, round, sleep, spawnTs, traffic } from './lib';
import { runLoad } from './loadgen';

export interface SoakRow {
  rate: number;
  durationMs: number;
  requests: number;
  failed: number;
  lost: number;
  /** [seconds since the load started, RSS MB] */
  samples: Array<[number, number]>;
  rssStartMb: number;
  rssHalfMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  rssIdleMb: number;
  /** RSS growth over the second half of the load, % of the half-way figure. */
  growthSecondHalfPercent: number;
}

export async function runSoakBench(o: { quick: boolean }): Promise<SoakRow> {
  const rate = o.quick ? 200 : 1500;
  const durationMs = o.quick ? 5000 : 10 * 60_000;
  const everyMs = o.quick ? 1000 : 10_000;
  const idleMs = o.quick ? 1000 : 60_000;
  const ph = spawnTs('bench/servers.ts', ['--posthog'], { label: 'posthog' });
  const dir = mkdtempSync(join(tmpdir(), 'tally-soak-'));
  const { endpoint: posthogUrl } = await ph.waitFor<{ endpoint: string }>((m) => m.ready === true);
  const stack = spawnTs('bench/stack-worker.ts', ['--posthog', posthogUrl, '--data-dir', dir], { label: 'stack', quiet: !process.env.TALLY_BENCH_VERBOSE });
  try {
    const { url, apiKey } = await stack.waitFor<{ url: string; apiKey: string }>((m) => m.ready === true, 60_000);
    const rss = async () => round((await stack.call<{ rss: number }>('mem')).rss / 1024 / 1024, 0);
    const t = traffic(41, 2000);
    const pool = Array.from({ length: 2000 }, () => JSON.stringify(t.native('soak_call')));
    const samples: Array<[number, number]> = [[0, await rss()]];
    progress(`soak: ${rate} single-event requests/s for ${durationMs / 1000} s against npm start's defaults, RSS every ${everyMs / 1000} s…`);
    const t0 = Date.now();
    const sampler = setInterval(() => {
      void rss().then((mb) => {
        samples.push([round((Date.now() - t0) / 1000, 0), mb]);
        if (!o.quick && samples.length % 6 === 1) progress(`soak: ${round((Date.now() - t0) / 60_000, 1)} min, RSS ${mb} MB`);
      });
    }, everyMs);
    const load = await runLoad({
      url,
      path: '/v1/usage',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: (i) => pool[i % pool.length]!,
      concurrency: 32,
      rate,
      durationMs,
    });
    clearInterval(sampler);
    const rssEnd = await rss();
    await stack.call('settle', { timeoutMs: 300_000 }, 320_000);
    const stored = await storedTotal(url, apiKey, 'soak_call');
    await sleep(idleMs);
    const rssIdle = await rss();
    const half = samples.reduce((best, s) => (Math.abs(s[0] * 1000 - durationMs / 2) < Math.abs(best[0] * 1000 - durationMs / 2) ? s : best), samples[0]!);
    const row: SoakRow = {
      rate,
      durationMs,
      requests: load.ok,
      failed: load.failed,
      lost: load.ok - stored,
      samples,
      rssStartMb: samples[0]![1],
      rssHalfMb: half[1],
      rssEndMb: rssEnd,
      rssMaxMb: Math.max(rssEnd, ...samples.map((s) => s[1])),
      rssIdleMb: rssIdle,
      growthSecondHalfPercent: round((100 * (rssEnd - half[1])) / Math.max(1, half[1]), 1),
    };
    progress(`soak: ${row.requests} requests (${row.failed} failed, lost ${row.lost}); RSS ${row.rssStartMb} → ${row.rssHalfMb} (half) → ${row.rssEndMb} MB (end), max ${row.rssMaxMb}, idle ${row.rssIdleMb}; second half ${row.growthSecondHalfPercent} %`);
    return row;
  } finally {
    await stack.stop(30_000);
    await ph.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
