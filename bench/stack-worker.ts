/**
 * Child process: the local stack (`startLocalStack`, what `npm start` runs) for the end-to-end and
 * kill -9 benchmarks, so that its CPU can be measured apart from the load generator, and so that it
 * can be killed.
 *
 *   node scripts/run.mjs bench/stack-worker.ts --posthog <url> [--data-dir <dir>] [--batch-window-ms 1000]
 *     [--batch-size 1000] [--stale-seconds 30] [--visibility-seconds 30] [--window-seconds 60] [--grace-seconds 60]
 *
 * Without options it runs `npm start`'s defaults: sampling on, with the local flag file (local/sampling.ts;
 * sampled events appended to a JSONL file), data in a directory (a fresh temporary one unless
 * `--data-dir`), except that batch events go to the
 * PostHog stand-in at `--posthog` instead of a JSONL file, so that the bench can count them. `--no-sampling`
 * turns sampling off. Sends `{ready, url, apiKey}`; answers `cpu`, `mem`
 * (resident set size), `settle` (queue empty and nothing in flight), `rolled-up` (every call in the
 * counters, every PostHog event delivered), `stats` (poller counters) and `stop`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localSampling } from '../local/sampling';
import { startLocalStack, type LocalStack } from '../local/stack';
import { loadLocalConfig } from '../src/config';
import { PostHogNodeSink } from '../src/sink/posthog';
import { argv, serveCommands } from './lib';

export const BENCH_API_KEY = 'tally_bench_key_0123456789';

async function main(): Promise<void> {
  const a = argv();
  const posthog = a.get('posthog');
  if (!posthog) throw new Error('--posthog <url> is required');
  // npm start keeps its data in a directory (LevelDB files): so does this stack, in a fresh one by default.
  const dataDir = a.get('data-dir') ?? mkdtempSync(join(tmpdir(), 'tally-bench-stack-'));
  const { sampling } = a.has('no-sampling') ? { sampling: undefined } : localSampling(loadLocalConfig({}), dataDir);
  const stack: LocalStack = await startLocalStack({
    port: 0,
    sampling,
    apiKey: BENCH_API_KEY,
    sink: new PostHogNodeSink({ apiKey: 'phc_bench', host: posthog, requestTimeoutMs: 5000, fetchRetryCount: 1 }),
    dataDir,
    ...(a.get('batch-window-ms') ? { batchWindowMs: Number(a.get('batch-window-ms')) } : {}),
    ...(a.get('window-seconds') ? { windowSeconds: Number(a.get('window-seconds')) } : {}),
    ...(a.get('grace-seconds') ? { graceSeconds: Number(a.get('grace-seconds')) } : {}),
    ...(a.get('batch-size') ? { batchSize: Number(a.get('batch-size')) } : {}),
    ...(a.get('stale-seconds') ? { staleSeconds: Number(a.get('stale-seconds')) } : {}),
    ...(a.get('visibility-seconds') ? { visibilityTimeoutSeconds: Number(a.get('visibility-seconds')) } : {}),
    log: (line) => console.error(line),
  });
  serveCommands(
    {
      cpu: () => ({ cpu: process.cpuUsage() }),
      mem: () => ({ rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed }),
      settle: async (m) => {
        const t0 = performance.now();
        await stack.settle(Number(m.timeoutMs ?? 120_000));
        return { settleMs: performance.now() - t0 };
      },
      'rolled-up': async (m) => {
        const t0 = performance.now();
        await stack.rolledUp(Number(m.timeoutMs ?? 300_000), { delivered: true });
        return { rolledUpMs: performance.now() - t0 };
      },
      stats: () => ({ poller: stack.poller.stats }),
    },
    async () => {
      await stack.stop();
      if (!a.get('data-dir')) rmSync(dataDir, { recursive: true, force: true });
    },
  );
  process.send?.({ ready: true, url: stack.url, apiKey: BENCH_API_KEY });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
