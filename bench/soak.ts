/**
 * Benchmark 6: memory under sustained load. `npm start` itself — its own entry point, its defaults (data
 * in a directory, batch events printed and appended to a JSONL file, sampling on against the local flag
 * file) — takes single-event requests paced at 1,500/s for 10 minutes; its resident set size (from
 * /proc) is sampled every 10 s through the load, the drain and a minute idle. It holds steady when the
 * second five minutes add little to the first: no state grows with the length of the load. RSS is split
 * into anonymous memory (heaps, native allocations) and file-backed pages (LevelDB's mapped tables).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storedTotal } from './e2e';
import { progress, REPO, round, sleep, traffic } from './lib';
import { runLoad } from './loadgen';

export interface SoakRow {
  /** Offered requests/s, and what the stack accepted on average. */
  rate: number;
  achievedRate: number;
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
  /** At the end of the load: anonymous and file-backed resident memory, MB. */
  rssAnonEndMb: number;
  rssFileEndMb: number;
  /** From the end of the load until every acknowledged call was counted. */
  drainMs: number;
  /** RSS growth over the second half of the load, % of the half-way figure. */
  growthSecondHalfPercent: number;
}

/** Resident set size of a process, MB (Linux /proc): `VmRSS`, `RssAnon` or `RssFile`. */
function rssMb(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024, 0) : 0;
}

export async function runSoakBench(o: { quick: boolean; rate?: number }): Promise<SoakRow> {
  const rate = o.rate ?? (o.quick ? 200 : 1500);
  const durationMs = o.quick ? 5000 : 10 * 60_000;
  const everyMs = o.quick ? 1000 : 10_000;
  const idleMs = o.quick ? 1000 : 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'tally-soak-'));
  // `npm start` is `node scripts/run.mjs local/start.ts`: run exactly that, on a free port and a fresh data directory.
  const proc = spawn(process.execPath, ['scripts/run.mjs', 'local/start.ts'], {
    cwd: REPO,
    env: { ...process.env, PORT: '0', TALLY_DATA_DIR: dir, POSTHOG_API_KEY: '', POWERTOOLS_LOG_LEVEL: 'WARN' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const verbose = Boolean(process.env.TALLY_BENCH_VERBOSE);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    if (out.length < 8192) out += d.toString();
    if (verbose) process.stderr.write(`  [npm start] ${d}`);
  });
  proc.stderr.on('data', (d: Buffer) => verbose && process.stderr.write(`  [npm start] ${d}`));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    const deadline = Date.now() + 60_000;
    while (!/tally is running at (\S+)/.test(out) && Date.now() < deadline) await sleep(100);
    const url = /tally is running at (\S+)/.exec(out)?.[1];
    if (!url) throw new Error(`npm start did not start: ${out}`);
    const apiKey = readFileSync(join(dir, 'local-api-key'), 'utf8').trim();
    const rss = () => rssMb(proc.pid!);
    const t = traffic(41, 2000);
    const pool = Array.from({ length: 2000 }, () => JSON.stringify(t.native('soak_call')));
    const samples: Array<[number, number]> = [[0, rss()]];
    progress(`soak: ${rate} single-event requests/s for ${durationMs / 1000} s against npm start (its defaults), RSS every ${everyMs / 1000} s…`);
    const t0 = Date.now();
    const sampler = setInterval(() => {
      const mb = rss();
      samples.push([round((Date.now() - t0) / 1000, 0), mb]);
      if (!o.quick && samples.length % 6 === 1) progress(`soak: ${round((Date.now() - t0) / 60_000, 1)} min, RSS ${mb} MB`);
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
    const rssEnd = rss();
    const rssAnonEnd = rssMb(proc.pid!, 'RssAnon');
    const rssFileEnd = rssMb(proc.pid!, 'RssFile');
    const d0 = Date.now();
    // Counted means queryable: wait until the total stops moving (the queue drained).
    let stored = -1;
    for (let i = 0; i < 600; i++) {
      const n = await storedTotal(url, apiKey, 'soak_call');
      if (n === stored && n >= load.ok) break;
      stored = n;
      await sleep(1000);
    }
    const drainMs = Date.now() - d0;
    await sleep(idleMs);
    clearInterval(sampler); // sampled through the drain and the idle minute too
    const rssIdle = rss();
    const loadSamples = samples.filter((x) => x[0] * 1000 <= durationMs + everyMs / 2);
    const half = loadSamples.reduce((best, s) => (Math.abs(s[0] * 1000 - durationMs / 2) < Math.abs(best[0] * 1000 - durationMs / 2) ? s : best), samples[0]!);
    const row: SoakRow = {
      rate,
      achievedRate: round((load.ok / load.wallMs) * 1000, 0),
      durationMs,
      requests: load.ok,
      failed: load.failed,
      lost: load.ok - stored,
      samples,
      rssStartMb: samples[0]![1],
      rssHalfMb: half[1],
      rssEndMb: rssEnd,
      rssMaxMb: Math.max(rssEnd, rssIdle, ...samples.map((x) => x[1])),
      rssIdleMb: rssIdle,
      rssAnonEndMb: rssAnonEnd,
      rssFileEndMb: rssFileEnd,
      drainMs,
      growthSecondHalfPercent: round((100 * (rssEnd - half[1])) / Math.max(1, half[1]), 1),
    };
    progress(`soak: ${row.requests} requests (${row.achievedRate}/s; ${row.failed} failed, lost ${row.lost}), drained ${round(drainMs / 1000, 1)} s after; RSS ${row.rssStartMb} → ${row.rssHalfMb} (half) → ${row.rssEndMb} MB (end), max ${row.rssMaxMb}, idle ${row.rssIdleMb}; at the end ${row.rssAnonEndMb} MB anonymous + ${row.rssFileEndMb} MB file-backed; second half ${row.growthSecondHalfPercent} %`);
    return row;
  } finally {
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
  }
}
