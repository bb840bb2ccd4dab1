/**
 * The package as it is published: `client/build.cjs` builds ESM, CommonJS and declarations into a
 * temporary directory laid out as `node_modules/@tally/client`; the CommonJS build is required here,
 * the ESM build imported by a child `node`, both sending to the tally stand-in; the declarations are
 * type-checked from an ESM and a CommonJS consumer without @types/node or the DOM library.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTallyStandin, type TallyStandin } from '../support/tally-standin';

jest.setTimeout(120_000);

const REPO = resolve(__dirname, '../..');
const KEY = 'tally_standin_key';
let root: string;
let pkg: string;
let standin: TallyStandin;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tally-client-build-'));
  pkg = join(root, 'node_modules/@tally/client');
  mkdirSync(pkg, { recursive: true });
  copyFileSync(join(REPO, 'client/package.json'), join(pkg, 'package.json'));
  const { buildClient } = require(join(REPO, 'client/build.cjs')) as { buildClient(o: { outDir: string; types?: boolean }): Promise<string> };
  await buildClient({ outDir: join(pkg, 'dist') });
  standin = await startTallyStandin({ key: KEY });
});
afterAll(async () => {
  await standin?.stop();
  rmSync(root, { recursive: true, force: true });
});

const EXPORTS = ['createTally', 'expressMiddleware', 'fastifyPlugin', 'honoMiddleware', 'middyMiddleware', 'TallyError'];

it('the CommonJS build exports the API by name and delivers gzipped batches', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const built = require(join(pkg, 'dist/index.cjs')) as typeof import('../../client/src');
  for (const name of EXPORTS) expect(typeof (built as Record<string, unknown>)[name]).toBe('function');
  const t = built.createTally({ url: standin.url, key: KEY });
  const uuids = Array.from({ length: 50 }, (_, i) => t.track({ distinctId: `cjs-${i}`, properties: { route: '/big/:id' } }));
  expect(await t.shutdown()).toEqual({ pending: 0 });
  const r = standin.requests.at(-1)!;
  expect(r.uuids).toEqual(uuids);
  expect(r.gzipped).toBe(true);
  // Nothing in the bundle imports a Node module: it runs on other runtimes as it is.
  for (const f of ['index.cjs', 'index.mjs']) expect(readFileSync(join(pkg, 'dist', f), 'utf8')).not.toMatch(/require\(["']node:|from ["']node:|require\(["'](fs|zlib|crypto)["']/);
});

/** Runs an ESM script in a child node (asynchronously: the stand-in in this process must answer it); killed after 30 s. */
function node(script: string, env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

it('the ESM build, imported by package name, delivers and shuts down', async () => {
  const before = standin.requests.length;
  const r = await node(
    `import { createTally, expressMiddleware } from '@tally/client';
     const t = createTally({ url: process.env.URL, key: process.env.KEY });
     for (let i = 0; i < 3; i++) t.track({ distinctId: 'esm-' + i });
     console.log(JSON.stringify({ ...(await t.shutdown()), mw: typeof expressMiddleware, stats: t.stats() }));`,
    { URL: standin.url, KEY },
  );
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toMatchObject({ pending: 0, mw: 'function', stats: { tracked: 3, delivered: 3 } });
  expect(standin.requests.slice(before).flatMap((x) => x.events.map((e) => e.distinctId))).toEqual(['esm-0', 'esm-1', 'esm-2']);
});

it("its timers do not keep a process alive (it exits on its own; the buffered event is the caller's to flush)", async () => {
  const r = await node(
    `import { createTally } from '@tally/client';
     const t = createTally({ url: process.env.URL, key: process.env.KEY, flushIntervalMs: 60000 });
     t.track({ distinctId: 'x' });
     console.log('tracked');`,
    { URL: standin.url, KEY },
  );
  // With a referenced 60 s timer, the child would be killed after 30 s (status null).
  expect(r).toMatchObject({ status: 0, stdout: 'tracked\n' });
});

it('the declarations type-check from ESM and CommonJS consumers, with neither @types/node nor DOM', () => {
  const dir = join(root, 'consumer');
  mkdirSync(dir, { recursive: true });
  const body = `
    const t: Tally = createTally({ url: 'http://127.0.0.1:3000', key: 'k', flushAt: 100, onError: (e: TallyError) => void e.code });
    const id: string | undefined = t.track({ distinctId: 42, event: 'big_route', properties: { route: '/big/:id' } });
    const s: number = t.stats().dropped;
    const mw = expressMiddleware(t, { distinctId: (req) => req.headers['x-api-key'] as string });
    const plugin = fastifyPlugin(t, { distinctId: (req) => req.method });
    const hono = honoMiddleware(t, { distinctId: (c) => c.req.header('x-user'), event: 'api_call' });
    const middy = middyMiddleware(t, { distinctId: (e) => e.headers?.['x-user'] });
    void [id, s, mw, plugin, hono, middy];
    // @ts-expect-error distinctId is required
    t.track({ event: 'x' });
  `;
  writeFileSync(join(dir, 'esm.mts'), `import { createTally, expressMiddleware, fastifyPlugin, honoMiddleware, middyMiddleware, type Tally, type TallyError } from '@tally/client';\n${body}`);
  writeFileSync(join(dir, 'cjs.cts'), `import { createTally, expressMiddleware, fastifyPlugin, honoMiddleware, middyMiddleware, type Tally, type TallyError } from '@tally/client';\n${body}`);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', lib: ['ES2022'], types: [], strict: true, noEmit: true, skipLibCheck: false }, files: ['esm.mts', 'cjs.cts'] }),
  );
  const tsc = require.resolve('typescript/lib/tsc.js');
  const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
