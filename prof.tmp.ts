import { startLocalStack } from './local/stack';
import { NoopSink } from './src/sink/print';
import { runLoad } from './bench/loadgen';
import { traffic } from './bench/lib';
async function main() {
  const s = await startLocalStack({ port: 0, apiKey: 'k'.repeat(20), sink: new NoopSink() });
  const t = traffic(21, 2000);
  const pool = Array.from({ length: 2000 }, () => JSON.stringify(t.native('p')));
  const c0 = process.cpuUsage();
  const load = await runLoad({ url: s.url, path: '/v1/usage', headers: { authorization: `Bearer ${'k'.repeat(20)}`, 'content-type': 'application/json' }, body: (i) => pool[i % pool.length]!, concurrency: 32, durationMs: 8000, rate: 1200 });
  const t0 = Date.now();
  await s.settle(60000);
  const c = process.cpuUsage(c0);
  console.log('ok', load.ok, 'failed', load.failed, 'drain ms', Date.now() - t0, 'cpu µs/req (incl. loadgen)', Math.round((c.user + c.system) / load.ok));
  await s.stop();
}
main();
