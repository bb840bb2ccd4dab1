/**
 * Small helpers shared by the benchmark modules: progress lines, percentiles, CPU deltas, seeded
 * random numbers with Zipf skew, realistic payloads, and child processes (each bench entry point runs
 * through scripts/run.mjs, like `npm start`, and talks to the orchestrator over an IPC channel).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';

export const REPO = resolve(__dirname.includes('.tally') ? resolve(__dirname, '../..') : resolve(__dirname, '..'));

const T0 = performance.now();
/** A progress line on stderr: `[bench  12.3 s] message`. */
export function progress(msg: string): void {
  const s = ((performance.now() - T0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s} s] ${msg}\n`);
}

export interface Percentiles {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Percentiles of a sample (milliseconds in, milliseconds out), nearest-rank. */
export function percentiles(sample: readonly number[]): Percentiles {
  const s = Float64Array.from(sample).sort();
  const at = (p: number): number => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!);
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, mean: s.length ? sum / s.length : 0, p50: at(50), p90: at(90), p99: at(99), max: s.length ? s[s.length - 1]! : 0 };
}

/** CPU microseconds (user + system) of this process since `start`. */
export function cpuMicros(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

export const round = (v: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** mulberry32: a tiny seeded PRNG so that every run draws the same payloads. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Zipf(s) sampler over ranks 0..n-1: rank 0 is the hottest key. */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s;
  for (let k = 0; k < n; k++) cdf[k] = cdf[k]! / sum;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Realistic traffic: a few thousand API users (Zipf 1.1) calling a dozen routes (Zipf 1.3). */
export const ROUTES = ['/v1/search', '/v1/items/:id', '/v1/items', '/v1/users/:id', '/v1/orders', '/v1/orders/:id', '/v1/checkout', '/v1/reports', '/v1/export', '/v1/auth/refresh', '/v1/webhooks', '/v1/files/:id'];
export const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];

export interface Traffic {
  /** A distinct id (Zipf-skewed over `users`). */
  user(): string;
  route(): string;
  /** A native API event of about 200 bytes. */
  native(event: string, withUuid?: boolean): Record<string, unknown>;
  /** A PostHog capture event (as posthog-node puts it into a /batch body). */
  posthog(event: string): Record<string, unknown>;
}

export function traffic(seed = 42, users = 5000): Traffic {
  const r = rng(seed);
  const u = zipf(users, 1.1, r);
  const rt = zipf(ROUTES.length, 1.3, r);
  const t: Traffic = {
    user: () => `user-${u().toString(36).padStart(4, '0')}`,
    route: () => ROUTES[rt()]!,
    native: (event, withUuid = false) => ({
      distinctId: t.user(),
      event,
      ...(withUuid ? { uuid: randomUUID() } : {}),
      properties: { route: t.route(), method: METHODS[Math.floor(r() * METHODS.length)], status: r() < 0.97 ? 200 : 500, duration_ms: Math.round(r() * 120) },
    }),
    posthog: (event) => ({
      event,
      distinct_id: t.user(),
      uuid: randomUUID(),
      timestamp: new Date().toISOString(),
      type: 'capture',
      library: 'posthog-node',
      library_version: '5.70.0',
      properties: { route: t.route(), status: 200, $lib: 'posthog-node', $lib_version: '5.70.0', $geoip_disable: true },
    }),
  };
  return t;
}

// ---------------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  proc: ChildProcess;
  /** Sends a command and waits for the reply with the same `id`. */
  call<T = Record<string, unknown>>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Waits for the first message matching `pred`. */
  waitFor<T = Record<string, unknown>>(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  /** SIGKILL, and wait for the exit. */
  kill9(): Promise<void>;
  /** Asks it to stop; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

const built = new Map<string, string>();

/**
 * Bundles a TypeScript entry once per run, as scripts/run.mjs does (esbuild, CommonJS, emulators
 * external), to `.tally/build/bench-<name>.cjs`. Children then start from the bundle: no rebuild per
 * child, and no two children writing the same file when several start at once.
 */
function bundleOnce(entry: string): string {
  let out = built.get(entry);
  if (out) return out;
  out = join(REPO, '.tally/build', `bench-${basename(entry).replace(/\.ts$/, '')}.cjs`);
  // Loaded at run time: this file is itself bundled, and esbuild's API cannot be.
  const req = createRequire(join(REPO, 'package.json'));
  const { buildSync } = req('esbuild') as typeof import('esbuild');
  const { localBuildOptions } = req(join(REPO, 'scripts/local-build.cjs')) as { localBuildOptions: (entry: string, outfile: string) => import('esbuild').BuildOptions };
  buildSync(localBuildOptions(resolve(REPO, entry), out));
  built.set(entry, out);
  return out;
}

/**
 * Starts a TypeScript entry point in a child `node` (bundled like scripts/run.mjs does) with an IPC
 * channel. Its stdout/stderr are forwarded to our stderr with a prefix (or dropped when `quiet`).
 */
export function spawnTs(entry: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean; label?: string } = {}): Child {
  const proc = spawn(process.execPath, ['--enable-source-maps', bundleOnce(entry), ...args], {
    cwd: REPO,
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', AWS_REGION: 'us-east-1', ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const label = opts.label ?? entry.replace(/^.*\//, '').replace(/\.ts$/, '');
  const forward = (s: NodeJS.ReadableStream | null) =>
    s?.on('data', (d: Buffer) => {
      if (opts.quiet) return;
      for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`  [${label}] ${line}\n`);
    });
  forward(proc.stdout);
  forward(proc.stderr);
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  let seq = 0;
  const waitFor = <T>(pred: (m: Record<string, unknown>) => boolean, timeoutMs = 60_000): Promise<T> =>
    new Promise<T>((res, rej) => {
      const onMsg = (m: Record<string, unknown>) => {
        if (!pred(m)) return;
        cleanup();
        if (typeof m.error === 'string') rej(new Error(`${label}: ${m.error}`));
        else res(m as T);
      };
      const onExit = (code: number | null) => {
        cleanup();
        rej(new Error(`${label} exited (${code}) before answering`));
      };
      const t = setTimeout(() => {
        cleanup();
        rej(new Error(`${label}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(t);
        proc.off('message', onMsg);
        proc.off('exit', onExit);
      };
      proc.on('message', onMsg);
      proc.once('exit', onExit);
    });
  return {
    proc,
    exited,
    waitFor,
    call: (cmd, args = {}, timeoutMs) => {
      const id = ++seq;
      const p = waitFor<never>((m) => m.id === id, timeoutMs);
      proc.send({ id, cmd, ...args });
      return p;
    },
    kill9: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    stop: async (graceMs = 10_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      if (proc.connected) proc.send({ id: 0, cmd: 'stop' });
      else proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * The child side: answers commands from the orchestrator. A handler's return value is sent back with
 * the command's id; `stop` runs `onStop` and exits.
 */
export function serveCommands(handlers: Record<string, (msg: Record<string, unknown>) => unknown>, onStop: () => Promise<void> | void): void {
  process.on('message', (m: Record<string, unknown>) => {
    const { id, cmd } = m as { id: number; cmd: string };
    if (cmd === 'stop') {
      void Promise.resolve(onStop()).finally(() => process.exit(0));
      return;
    }
    const h = handlers[cmd];
    Promise.resolve()
      .then(() => (h ? h(m) : Promise.reject(new Error(`unknown command ${cmd}`))))
      .then(
        (r) => process.send?.({ id, ...(r as object) }),
        (err: unknown) => process.send?.({ id, error: String((err as Error)?.stack ?? err) }),
      );
  });
  process.on('disconnect', () => void Promise.resolve(onStop()).finally(() => process.exit(0)));
}

/** Reads `--name value` / `--name=value` / `--flag` from argv. */
export function argv(): Map<string, string> {
  const out = new Map<string, string>();
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a[i]!);
    if (!m) continue;
    if (m[2] !== undefined) out.set(m[1]!, m[2]);
    else if (a[i + 1] !== undefined && !a[i + 1]!.startsWith('--')) out.set(m[1]!, a[++i]!);
    else out.set(m[1]!, 'true');
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
