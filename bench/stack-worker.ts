/**
 * Child process: the local stack (`startLocalStack`, what `npm start` runs) for the end-to-end and
 * kill -9 benchmarks, so that its CPU can be measured apart from the load generator, and so that it
 * can be killed.
 *
 *   node scripts/run.mjs bench/stack-worker.ts --posthog <url> [--data-dir <dir>] [--batch-window-ms 1000]
 *     [--batch-size 1000] [--stale-seconds 30] [--visibility-seconds 30] [--window-seconds 60] [--grace-seconds 60]
 *
 * Without options it runs `npm start`'s defaults. Sends `{ready, url, apiKey}`; answers `cpu`, `mem`
 * (resident set size), `settle` (queue empty and nothing in flight), `rolled-up` (every call in the
 * counters, every PostHog event delivered), `stats` (poller counters) and `stop`.
 */
import { startLocalStack, type LocalStack } from '../local/stack';
import { PostHogNodeSink } from '../src/sink/posthog';
import { argv, serveCommands } from './lib';

export const BENCH_API_KEY = 'tally_bench_key_0123456789';

async function main(): Promise<void> {
  const a = argv();
  const posthog = a.get('posthog');
  if (!posthog) throw new Error('--posthog <url> is required');
  const stack: LocalStack = await startLocalStack({
    port: 0,
    apiKey: BENCH_API_KEY,
    sink: new PostHogNodeSink({ apiKey: 'phc_bench', host: posthog, requestTimeoutMs: 5000, fetchRetryCount: 1 }),
    ...(a.get('data-dir') ? { dataDir: a.get('data-dir') } : {}),
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
    () => stack.stop(),
  );
  process.send?.({ ready: true, url: stack.url, apiKey: BENCH_API_KEY });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
