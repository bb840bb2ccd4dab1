/**
 * Child process for benchmark 7 (the client), one role per process so that each one's CPU is its own:
 *
 *   --standin [--key k]                         a tally stand-in (test/support/tally-standin.ts): counts
 *                                               uuids the way tally does; answers `stats`, `down`, `up`, `reset`
 *   --api --tally <url> --key <k> [--track] [--spool <dir>] [--flush-at n] [--flush-interval-ms n]
 *                                               examples/express (the tutorial's app), tracked with
 *                                               expressMiddleware when --track; answers `cpu`, `stats`
 *   --track --tally <url> --key <k> (--calls n | --rate r --seconds s) [--spool <dir>]
 *                                               after a warm-up, on `go`: track() in a loop (burst) or paced, then flush; sends
 *                                               `{done, cpuUs, calls, stats, drainedAt}` and waits for `stop`;
 *                                               --dry: the paced loop without track() (its baseline)
 *
 * Sends `{ready, …}` on its IPC channel when started.
 */
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createTally, type Tally } from '../client/src';
import { createApp } from '../examples/express/app';
import { startTallyStandin } from '../test/support/tally-standin';
import { argv, serveCommands, traffic } from './lib';

async function main(): Promise<void> {
  const a = argv();
  const key = a.get('key') ?? 'tally_bench_client_key';
  const options = () => ({
    url: a.get('tally') ?? '',
    key,
    ...(a.get('spool') ? { spool: a.get('spool') } : {}),
    ...(a.get('flush-at') ? { flushAt: Number(a.get('flush-at')) } : {}),
    ...(a.get('flush-interval-ms') ? { flushIntervalMs: Number(a.get('flush-interval-ms')) } : {}),
    ...(a.get('compression') ? { compression: a.get('compression') as 'gzip' | 'none' } : {}),
    onError: () => undefined,
  });

  if (a.has('standin')) {
    const s = await startTallyStandin({ key });
    serveCommands(
      {
        stats: () => ({
          requests: s.requests.length,
          events: s.requests.reduce((n, r) => n + r.uuids.length, 0),
          counted: s.counts.size,
          countedTwice: s.countedTwice().length,
          gzipped: s.requests.filter((r) => r.gzipped).length,
          bytes: s.requests.reduce((n, r) => n + r.bytes, 0),
        }),
        down: async () => {
          await s.goDown();
          return {};
        },
        up: async () => {
          await s.comeBack();
          return {};
        },
        reset: () => {
          s.reset();
          return {};
        },
      },
      () => s.stop(),
    );
    process.send?.({ ready: true, url: s.url });
    return;
  }

  if (a.has('api')) {
    const tally: Tally | undefined = a.get('track') === 'true' ? createTally(options()) : undefined;
    let handled = 0;
    const app = createApp(tally);
    const server = app.listen(0, '127.0.0.1');
    server.keepAliveTimeout = 60_000;
    // Count answered requests without touching the app's routes.
    server.on('request', (_req, res) => res.once('finish', () => handled++));
    await new Promise<void>((r) => server.once('listening', () => r()));
    serveCommands(
      {
        cpu: () => ({ cpu: process.cpuUsage(), handled }),
        stats: () => ({ stats: tally?.stats() ?? null }),
      },
      async () => {
        await tally?.shutdown({ timeoutMs: 10_000 });
        server.closeAllConnections();
        server.close();
      },
    );
    process.send?.({ ready: true, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    return;
  }

  if (a.has('track')) {
    const t = traffic(7, 2000);
    const events = Array.from({ length: 4096 }, () => ({ distinctId: t.user(), event: 'api_call', properties: { route: t.route(), method: 'GET', status: 200, duration_ms: 1.7 } }));
    // Warm up (JIT, node:http and zlib loaded) with a client of its own, so that the measured one
    // starts as in a process that has been serving for a while.
    const warm = createTally({ ...options(), spool: undefined });
    for (let i = 0; i < 20_000; i++) warm.track(events[i & 4095]!);
    await warm.shutdown({ timeoutMs: 10_000 });
    const tally = createTally(options());
    // Measures once told `go` (the orchestrator resets the stand-in's counters first).
    let go = (): void => undefined;
    const started = new Promise<void>((r) => (go = r));
    serveCommands(
      {
        go: () => {
          go();
          return {};
        },
      },
      () => tally.shutdown({ timeoutMs: 1000 }).then(() => undefined),
    );
    process.send?.({ ready: true });
    await started;
    // --dry: the same loop without track(), the baseline of the paced mode.
    const dry = a.has('dry');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let calls = 0;
    if (a.has('calls')) {
      // Burst: as fast as the stand-in takes them, yielding every 1,000 calls so sending interleaves as
      // in an API, and waiting while 10,000 are held (faster than that, the buffer would drop the oldest
      // and the CPU per call would leave out the sending of what was dropped).
      const n = Number(a.get('calls'));
      while (calls < n) {
        for (let i = 0; i < 1000 && calls < n; i++) tally.track(events[calls++ & 4095]!);
        await nextTurn();
        while (tally.stats().queued > 10_000) await new Promise((r) => setTimeout(r, 1));
      }
    } else {
      // Paced: `rate` calls per second for `seconds`, a few every millisecond or so.
      const rate = Number(a.get('rate') ?? 1000);
      const end = t0 + Number(a.get('seconds') ?? 10) * 1000;
      while (performance.now() < end) {
        const due = Math.floor(((performance.now() - t0) / 1000) * rate);
        if (dry) calls = due;
        else while (calls < due) tally.track(events[calls++ & 4095]!);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    const tracking = process.cpuUsage(cpu0);
    const r = await tally.flush({ timeoutMs: 120_000 });
    const cpu = process.cpuUsage(cpu0);
    process.send?.({
      done: true,
      calls,
      wallMs: performance.now() - t0,
      cpuUs: cpu.user + cpu.system,
      trackingCpuUs: tracking.user + tracking.system,
      pending: r.pending,
      drainedAt: Date.now(),
      stats: tally.stats(),
    });
    return;
  }
  throw new Error('usage: client-worker.ts --standin | --api … | --track …');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
