/**
 * Micro-benchmark: CPU added per event and per request by sampling's flag evaluation (issue 4; goal
 * ≤ 5 µs per evaluation). Standalone: `node scripts/run.mjs bench/flags.ts [iterations]`; importable:
 * `benchFlags()` returns the numbers (the performance harness can include them).
 *
 * Definitions: the recorded posthog-node fixture (test/fixtures/posthog-node-5.70), else
 * local/flags-definitions.json (same flag): 100% where firstRouteCalled is /big/1, else 10%. They are
 * served by the PostHog stand-in (local/posthog-standin.ts) over loopback, so the sampler runs exactly as in ingest; nothing
 * below the measured loops touches the network.
 *
 * Rows (CPU µs = user + system from process.cpuUsage over warm loops):
 *   sha1        PostHog's bucket alone (node:crypto one-shot SHA-1): the floor;
 *   compiled    one decision of the compiled flag, property answers cached (what ingest does per event);
 *   sampler     Sampler.sample() per event in 100-event requests: $-filter, person properties, decision;
 *   request1    Sampler.sample() for a one-event request (per-request overhead included);
 *   posthog     posthog-node's own local evaluation (getFeatureFlagResult, onlyEvaluateLocally) per call,
 *               for comparison: what evaluating through posthog-node on every event would cost.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PostHog } from 'posthog-node';
import { posthogBucket } from '../src/sampling/bucket';
import { CompiledFlag, planFlag, type FlagDefinitions } from '../src/sampling/flag';
import { startPosthogStandin } from '../local/posthog-standin';
import { PostHogSampler } from '../src/sampling/posthog';
import type { QueuedEvent } from '../src/types';

export interface FlagsBenchRow {
  name: 'sha1' | 'compiled' | 'sampler' | 'request1' | 'posthog';
  /** Evaluations (events) measured. */
  n: number;
  cpuUsPerEval: number;
  wallUsPerEval: number;
  /** Share of evaluations that sampled the event. */
  sampledShare: number;
}

export interface FlagsBenchResult {
  definitions: string;
  rows: FlagsBenchRow[];
  /** compiled − sha1: what tally adds on top of the hash. */
  overheadOverSha1Us: number;
  /** The goal of the issue. */
  goalUs: 5;
  meetsGoal: boolean;
}

const REPO = resolve(__dirname.includes('.tally') ? resolve(__dirname, '../..') : resolve(__dirname, '..'));
const FIXTURE = resolve(REPO, 'test/fixtures/posthog-node-5.70/flags-definitions.json');
const LOCAL = resolve(REPO, 'local/flags-definitions.json');

function measure(n: number, fn: (i: number) => boolean): { cpu: number; wall: number; share: number } {
  let hits = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) if (fn(i)) hits++;
  const wall = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / n, wall: wall / n, share: hits / n };
}

async function measureAsync(n: number, fn: (i: number) => Promise<number>, perCall = 1): Promise<{ cpu: number; wall: number; share: number }> {
  let hits = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) hits += await fn(i);
  const wall = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / (n * perCall), wall: wall / (n * perCall), share: hits / (n * perCall) };
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

export async function benchFlags(opts: { iterations?: number; log?: (line: string) => void } = {}): Promise<FlagsBenchResult> {
  const n = opts.iterations ?? 100_000;
  const log = opts.log ?? (() => undefined);
  const defsFile = existsSync(FIXTURE) ? FIXTURE : LOCAL;
  const defs = JSON.parse(readFileSync(defsFile, 'utf8')) as FlagDefinitions;
  const flagKey = defs.flags[0]!.key;
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-flags-'));
  const file = join(dir, 'flags.json');
  writeFileSync(file, JSON.stringify(defs));
  const local = await startPosthogStandin({ flagDefinitionsFile: file });
  const sampler = new PostHogSampler({
    projectKey: 'phc_bench',
    personalKey: 'phx_bench',
    host: local.url,
    flagKey,
    personProperties: [['firstRouteCalled', 'route']],
    requestTimeoutMs: 2000,
    readyTimeoutMs: 2000,
    pollIntervalMs: 3_600_000,
  });
  const reference = new PostHog('phc_bench', { host: local.url, personalApiKey: 'phx_bench', strictLocalEvaluation: true, sendFeatureFlagEvent: false, featureFlagsPollingInterval: 3_600_000 });
  const rows: FlagsBenchRow[] = [];
  const row = (name: FlagsBenchRow['name'], count: number, m: { cpu: number; wall: number; share: number }) => {
    rows.push({ name, n: count, cpuUsPerEval: round(m.cpu), wallUsPerEval: round(m.wall), sampledShare: round(m.share, 4) });
    log(`${name.padEnd(9)} ${String(count).padStart(7)} evals  ${m.cpu.toFixed(2).padStart(7)} µs CPU  ${m.wall.toFixed(2).padStart(7)} µs wall  sampled ${(m.share * 100).toFixed(1)}%`);
  };
  try {
    await sampler.whenLoaded();
    await reference.waitForLocalEvaluationReady(5000);
    const ids = Array.from({ length: n }, (_, i) => `user-${i}`);
    const props = { firstRouteCalled: '/v1/things' };

    // sha1 floor.
    measure(10_000, (i) => posthogBucket(flagKey, ids[i]!) <= 0.1);
    row('sha1', n, measure(n, (i) => posthogBucket(flagKey, ids[i]!) <= 0.1));

    // The compiled flag, caches warm (first decision per property value asks posthog-node once).
    const plan = planFlag(defs, flagKey, async () => 'no_match');
    if (!(plan instanceof CompiledFlag)) throw new Error(`flag ${flagKey} does not compile (${plan.kind})`);
    await plan.decide('warm', props);
    const decideSync = (i: number): boolean => {
      const d = plan.decide(ids[i]!, props);
      if (d instanceof Promise) throw new Error('cache miss in the measured loop');
      return d.sampled;
    };
    measure(10_000, decideSync);
    row('compiled', n, measure(n, decideSync));

    // The sampler as ingest calls it: requests of 100 events.
    const mk = (i: number): QueuedEvent => ({ uuid: `u-${i}`, event: 'big_route', distinct_id: ids[i]!, properties: { route: '/v1/things', status: 200 }, timestamp: '2026-01-01T00:00:00.000Z', received_at: 0 });
    const events = ids.map((_, i) => mk(i));
    const requests = Array.from({ length: Math.floor(n / 100) }, (_, r) => events.slice(r * 100, r * 100 + 100));
    await sampler.sample(requests[0]!);
    await measureAsync(Math.min(100, requests.length), async (r) => (await sampler.sample(requests[r]!)).sampled.length, 100);
    row('sampler', requests.length * 100, await measureAsync(requests.length, async (r) => (await sampler.sample(requests[r]!)).sampled.length, 100));
    const singles = Math.min(n, 50_000);
    row('request1', singles, await measureAsync(singles, async (i) => (await sampler.sample([events[i]!])).sampled.length));

    // posthog-node's own local evaluation, per call.
    const m = Math.min(n, 20_000);
    const ref = async (i: number) =>
      (await reference.getFeatureFlagResult(flagKey, ids[i]!, { personProperties: props, onlyEvaluateLocally: true, sendFeatureFlagEvents: false }))?.enabled ? 1 : 0;
    await measureAsync(2000, ref);
    row('posthog', m, await measureAsync(m, ref));
  } finally {
    await sampler.close();
    await reference.shutdown(1000);
    await local.stop();
  }
  const get = (name: FlagsBenchRow['name']) => rows.find((r) => r.name === name)!;
  const compiled = get('compiled').cpuUsPerEval;
  return { definitions: defsFile, rows, overheadOverSha1Us: round(compiled - get('sha1').cpuUsPerEval), goalUs: 5, meetsGoal: get('sampler').cpuUsPerEval <= 5 };
}

if (/flags\.(c?js|ts)$/.test(process.argv[1] ?? '')) {
  const iterations = Number(process.argv[2] ?? 100_000);
  benchFlags({ iterations, log: (l) => console.log(l) })
    .then((r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(0);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
