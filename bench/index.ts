/**
 * `npm run bench [-- --quick] [-- --only ingest,cold,counting,e2e,naive,soak,client,cost] [-- --soak-rate N]`
 * `npm run bench -- --recompute`: the cost section, the goals, the tables and the chart of
 * `bench/results/latest.json` derived again from its measurements (after a change to the cost model or the
 * goals; nothing is measured).
 *
 * Runs the benchmark suite (see docs/PERFORMANCE.md), printing progress lines on stderr, then the
 * tables on stdout, and writes under bench/results/: `<timestamp>.json`, `latest.json`, `latest.svg`,
 * `summary.md` (`--only` writes `partial.*` instead; `--quick` writes `quick.json` / `quick.svg` /
 * `quick.md`, and asserts nothing about speed: it only keeps the harness working in CI).
 *
 * Every server it starts listens on 127.0.0.1; every load is bounded in count and time.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runClientBench } from './client';
import { runColdStartBench } from './cold-start';
import { ASSUMPTIONS, computeCosts, PRICES } from './cost';
import { runCountingBench } from './counting';
import { runE2eBench } from './e2e';
import { runIngestBench, runPostHogHttpBench } from './ingest';
import { argv, progress, REPO } from './lib';
import { runNaiveBench } from './naive';
import { runSoakBench } from './soak';
import { evaluateGoals, load, machine, renderSvg, renderTables, speedProbe, type BenchResults } from './report';

const SECTIONS = ['ingest', 'cold', 'counting', 'e2e', 'naive', 'soak', 'client', 'cost'] as const;
type Section = (typeof SECTIONS)[number];

/** `--recompute`: what latest.json derives from its measurements (cost, goals, tables, chart), derived again. */
function recompute(outDir: string): void {
  const file = join(outDir, 'latest.json');
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  if (r.ingest && r.counting) r.cost = { prices: { ...PRICES }, assumptions: { ...ASSUMPTIONS }, rows: computeCosts({ ingest: r.ingest, counting: r.counting.rows }) };
  r.goals = evaluateGoals(r);
  const tables = renderTables(r);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(outDir, 'latest.svg'), renderSvg(r));
  writeFileSync(join(outDir, 'summary.md'), `${tables}\n`);
  process.stdout.write(`\n${tables}\n\n`);
  progress(`recomputed cost and goals of the run started ${r.startedAt}: bench/results/latest.{json,svg} and summary.md`);
}

async function main(): Promise<void> {
  const a = argv();
  if (a.has('recompute')) return recompute(join(REPO, 'bench/results'));
  const quick = a.has('quick');
  const only = new Set((a.get('only') ?? SECTIONS.join(',')).split(',').map((s) => s.trim()) as Section[]);
  for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s} (one of ${SECTIONS.join(', ')})`);
  const outDir = join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });

  const r: BenchResults = {
    version: 1,
    quick,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: { ...machine(), loadavgStart: load(), loadavgEnd: [], probeStart: speedProbe() },
    durationsMs: {},
    goals: [],
  };
  progress(`tally benchmark${quick ? ' --quick' : ''}: ${[...only].join(', ')} on ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, load ${r.machine.loadavgStart.join('/')}`);
  if (!quick && r.machine.loadavgStart[0]! > 0.5) progress(`note: the machine is busy (load ${r.machine.loadavgStart[0]}); CPU figures hold, throughput figures will be low`);

  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    progress(`── ${name}`);
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      r.durationsMs[name] = Math.round(performance.now() - t0);
    }
  };
  if (only.has('ingest')) {
    r.ingest = await timed('1. ingest handler', () => runIngestBench({ quick }));
    r.posthogHttp = await timed('1b. PostHog delivery by HTTP client', () => runPostHogHttpBench({ quick }));
  }
  if (only.has('cold')) r.coldStart = await timed('2. cold start', () => runColdStartBench({ quick }));
  if (only.has('counting')) {
    r.counting = await timed('3. counting', () => runCountingBench({ quick }));
    for (const k of r.counting.skew) progress(`skew: ${k.users} users → ${k.pairs} active pairs per window at 1M calls/minute: ${k.posthogEventsPer1M} PostHog events and ${k.counterWritesPer1M} counter writes per 1M calls`);
  }
  if (only.has('e2e')) r.e2e = await timed('4. end to end', () => runE2eBench({ quick }));
  if (only.has('naive')) r.naive = await timed('5. naive approaches', () => runNaiveBench({ quick }));
  const soakRate = a.get('soak-rate') ? Number(a.get('soak-rate')) : undefined;
  if (only.has('soak')) r.soak = await timed('6. memory under sustained load', () => runSoakBench({ quick, ...(soakRate ? { rate: soakRate } : {}) }));
  if (only.has('client')) r.client = await timed('7. client', () => runClientBench({ quick }));
  if (only.has('cost') && r.ingest && r.counting) {
    r.cost = { prices: { ...PRICES }, assumptions: { ...ASSUMPTIONS }, rows: computeCosts({ ingest: r.ingest, counting: r.counting.rows }) };
  }

  r.finishedAt = new Date().toISOString();
  r.machine.loadavgEnd = load();
  r.machine.probeEnd = speedProbe();
  r.goals = evaluateGoals(r);
  const tables = renderTables(r);
  const svg = renderSvg(r);
  const json = `${JSON.stringify(r, null, 2)}\n`;
  // latest.* (committed) only from a full run: a --only run writes partial.* and leaves them alone.
  const partial = only.size < SECTIONS.length;
  const name = quick ? 'quick' : partial ? 'partial' : 'latest';
  if (!quick) writeFileSync(join(outDir, `${r.startedAt.replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(join(outDir, `${name}.json`), json);
  writeFileSync(join(outDir, `${name}.svg`), svg);
  writeFileSync(join(outDir, name === 'latest' ? 'summary.md' : `${name}.md`), `${tables}\n`);
  process.stdout.write(`\n${tables}\n\n`);
  const total = Object.values(r.durationsMs).reduce((s, v) => s + v, 0);
  progress(`done in ${(total / 1000).toFixed(1)} s: bench/results/${name}.{json,svg} and ${name === 'latest' ? 'summary' : name}.md`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
