/**
 * The spool's guarantee, end to end: an Express API (a child process running the *built* client with a
 * spool) serves load; tally (the local stack) is stopped, so tracked calls pile up in the spool; the
 * API is killed with SIGKILL mid-load; tally comes back, the API is started again on the same spool
 * and replays it. Every call the API answered is counted, once: the middleware tracks a call before
 * its answer is written, so answered ≤ counted ≤ answered + the requests in flight at the kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack';
import { NoopSink } from '../../src/sink/print';

jest.setTimeout(180_000);

const REPO = resolve(__dirname, '../..');
const KEY = 'tally_spool_kill_key_0123';
const USERS = 10;
const CONCURRENCY = 8;
let root: string;
let clientEsm: string;
let stack: LocalStack;
let opts: Partial<LocalStackOptions> & Pick<LocalStackOptions, 'apiKey' | 'sink'>;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tally-spool-kill-'));
  const { buildClient } = require(join(REPO, 'client/build.cjs')) as { buildClient(o: { outDir: string; types?: boolean }): Promise<string> };
  await buildClient({ outDir: join(root, 'dist'), types: false });
  clientEsm = pathToFileURL(join(root, 'dist/index.mjs')).href;
  opts = { port: 0, apiKey: KEY, sink: new NoopSink(), dataDir: join(root, 'tally'), batchWindowMs: 200, staleSeconds: 4, visibilityTimeoutSeconds: 6, windowSeconds: 10, graceSeconds: 8, rollupIntervalMs: 300 };
  stack = await startLocalStack(opts);
  opts.port = Number(new URL(stack.url).port);
});
afterAll(async () => {
  await stack?.stop();
  rmSync(root, { recursive: true, force: true });
});

interface App {
  proc: ChildProcess;
  port: number;
  message<T>(m: string): Promise<T>;
  exited: Promise<unknown>;
}

async function startApp(spool: string): Promise<App> {
  const proc = spawn(process.execPath, [join(__dirname, 'fixtures/spool-app.mjs')], {
    cwd: REPO,
    env: { ...process.env, TALLY_CLIENT: clientEsm, TALLY_URL: stack.url, TALLY_KEY: KEY, SPOOL_DIR: spool },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((r) => proc.once('exit', r));
  const port = await new Promise<number>((res, rej) => {
    proc.once('message', (m: { port: number }) => res(m.port));
    proc.once('exit', (code) => rej(new Error(`app exited (${code}) before listening`)));
  });
  return {
    proc,
    port,
    exited,
    message: <T>(m: string) =>
      new Promise<T>((res) => {
        proc.once('message', (r: T) => res(r));
        proc.send(m);
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function totalOf(distinctId: string): Promise<number> {
  const qs = new URLSearchParams({ event: 'spool_probe', distinctId, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
  const r = await fetch(`${stack.url}/v1/usage?${qs}`, { headers: { authorization: `Bearer ${KEY}` } });
  expect(r.status).toBe(200);
  return ((await r.json()) as { total: number }).total;
}

test('kill -9 of the API while tally is down loses no answered call: the restarted API replays its spool', async () => {
  const spool = join(root, 'spool');
  let app = await startApp(spool);
  const answered = new Map<string, number>();
  let ok = 0;
  let failed = 0;
  let killed = false;
  let outage: Promise<void> | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const call = (i: number): Promise<number> =>
    new Promise((res) => {
      const req = request({ hostname: '127.0.0.1', port: app.port, path: `/big/${i}`, agent, headers: { 'x-user': `user-${i % USERS}` } }, (r) => {
        r.resume();
        r.on('end', () => res(r.statusCode ?? 0));
        r.on('error', () => res(0));
      });
      req.on('error', () => res(0));
      req.end();
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!killed) {
        const i = next++;
        const status = await call(i);
        if (status !== 200) {
          failed++;
          continue;
        }
        ok++;
        answered.set(`user-${i % USERS}`, (answered.get(`user-${i % USERS}`) ?? 0) + 1);
        // tally goes down after 800 answered calls; the API keeps answering, its spool fills.
        if (ok === 800) outage = stack.stop();
        if (ok === 2000 && !killed) {
          killed = true;
          app.proc.kill('SIGKILL');
        }
      }
    }),
  );
  agent.destroy();
  await outage;
  await app.exited;
  // The API died with tracked calls in its spool that tally never acknowledged.
  const left = readdirSync(spool).filter((n) => n.endsWith('.batch') || n.endsWith('.open'));
  expect(left.length).toBeGreaterThan(0);
  expect(failed).toBeLessThanOrEqual(CONCURRENCY);

  // tally comes back; the API starts again on the same spool and replays it.
  stack = await startLocalStack(opts);
  app = await startApp(spool);
  let stats: { replayed: number; delivered: number; queued: number } = { replayed: 0, delivered: 0, queued: 1 };
  for (let i = 0; i < 600 && stats.queued > 0; i++) {
    await sleep(100);
    ({ stats } = await app.message<{ stats: typeof stats }>('stats'));
  }
  expect(stats.queued).toBe(0);
  expect(stats.replayed).toBeGreaterThan(0);
  expect(stats.delivered).toBe(stats.replayed);
  await app.message('shutdown');
  await app.exited;
  expect(readdirSync(spool).filter((n) => n !== 'lock')).toEqual([]);

  await stack.settle(120_000);
  let counted = 0;
  for (let u = 0; u < USERS; u++) {
    const n = await totalOf(`user-${u}`);
    counted += n;
    expect(n).toBeGreaterThanOrEqual(answered.get(`user-${u}`) ?? 0);
  }
  expect(ok).toBeGreaterThanOrEqual(2000);
  expect(counted).toBeGreaterThanOrEqual(ok);
  // At most the requests in flight at the kill were tracked without an answer; nothing counted twice.
  expect(counted - ok).toBeLessThanOrEqual(CONCURRENCY);
});
