/**
 * Benchmark 2: cold start. Bundles each `functions/<name>/index.ts` with the options the CDK uses
 * (lib/build-options.ts: esbuild, ESM with code splitting, minified, node22, the AWS SDK inside), then
 * in a fresh `node` process per sample times `import()` of the bundle (module init) and, for ingest,
 * the first invocation's lazy init (config, clients) on a request that needs no AWS (a 404).
 * Sizes count what a cold start loads: the entry and the chunks it imports statically. Chunks behind a
 * dynamic `import()` (ingest's posthog-node half, loaded only when sampling is configured) are reported
 * apart, and a second ingest row loads them too. Reports what each bundle is made of (esbuild metafile).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type { Metafile } from 'esbuild';
import { percentiles, progress, REPO, round } from './lib';
import { lambdaBuildOptions } from '../lib/build-options';

export interface ColdStartRow {
  fn: string;
  entry: string;
  /** Loaded at cold start: the entry and its static chunks. */
  bytes: number;
  gzipBytes: number;
  /** Behind dynamic imports, loaded only when reached (ingest: when sampling is on); 0 if none. */
  lazyBytes: number;
  /** Median of `import()` in a fresh process, ms. */
  initMs: number;
  initP90Ms: number;
  /** Median of the first invocation's lazy init (ingest variants only), ms. */
  firstInvokeMs?: number;
  /** Largest contributors to the bundle, by package. */
  topPackages: Array<{ name: string; bytes: number }>;
}


/**
 * `withLazy`: also load the on-demand chunks whose code includes this module (ingest with sampling: the
 * posthog-node half, not the AWS SDK chunks of `TALLY_AWS_CLIENT=sdk` nor the query routes of the Function
 * URL front door, which are on demand too).
 */
const FUNCTIONS: Array<{ fn: string; entry: string; probe?: boolean; withLazy?: string }> = [
  { fn: 'ingest', entry: 'functions/ingest/index.ts', probe: true },
  { fn: 'ingest + sampling', entry: 'functions/ingest/index.ts', withLazy: 'src/sampling/enabled.ts' },
  { fn: 'aggregator', entry: 'functions/aggregator/index.ts' },
  { fn: 'query', entry: 'functions/query/index.ts' },
  { fn: 'rollup', entry: 'functions/rollup/index.ts' },
];

/**
 * Environment a function needs to initialise; nothing here reaches AWS (no secret ARNs, and no
 * configured keys: importing them into project default reads DynamoDB at cold start, one GetItem for
 * the project and one per key, which this machine cannot reach — managed keys need no import).
 */
const ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDCOLDSTART',
  AWS_SECRET_ACCESS_KEY: 'cold',
  TALLY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/tally-events',
  TALLY_TABLE_NAME: 'tally',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

function packageOf(input: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  if (!m) return input.startsWith('src/') || input.startsWith('functions/') || input.startsWith('bench/') ? 'tally (src, functions)' : input;
  const name = m[1]!;
  if (name.startsWith('@aws-sdk/') || name.startsWith('@smithy/') || name.startsWith('@aws-crypto/')) return `${name.split('/')[0]}/*`;
  return name;
}

function composition(meta: Metafile, files: string[]): Array<{ name: string; bytes: number }> {
  const by = new Map<string, number>();
  for (const f of files) {
    const out = meta.outputs[f]!;
    for (const [input, info] of Object.entries(out.inputs)) by.set(packageOf(input), (by.get(packageOf(input)) ?? 0) + info.bytesInOutput);
  }
  return [...by]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 6);
}

/** One fresh process: ms for `import()`, and for ingest the first (404) invocation. */
const PROBE = `
const t0 = performance.now();
const m = await import(process.env.BUNDLE);
for (const c of JSON.parse(process.env.LAZY || '[]')) await import(c);
const t1 = performance.now();
let first = null;
if (process.env.PROBE === '1') {
  const ev = { version: '2.0', routeKey: '$default', rawPath: '/cold', rawQueryString: '', headers: {},
    requestContext: { http: { method: 'GET', path: '/cold', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'x' }, requestId: 'r', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0, accountId: '0', apiId: 'a', domainName: 'd', domainPrefix: 'd' },
    isBase64Encoded: false };
  const r = await m.handler(ev, {});
  if (r.statusCode !== 404) throw new Error('unexpected ' + r.statusCode);
  first = performance.now() - t1;
}
console.log(JSON.stringify({ init: t1 - t0, first }));
`;

export async function runColdStartBench(o: { quick: boolean }): Promise<ColdStartRow[]> {
  // Loaded at run time: scripts/run.mjs bundles this file, and esbuild's API cannot itself be bundled.
  const { build } = createRequire(join(REPO, 'package.json'))('esbuild') as typeof import('esbuild');
  const outRoot = resolve(REPO, 'bench/results/bundles');
  const samples = o.quick ? 3 : 11;
  const rows: ColdStartRow[] = [];
  for (const f of FUNCTIONS) {
    const outdir = join(outRoot, f.fn.replace(/[^a-z]+/g, '-').replace(/-$/, ''));
    rmSync(outdir, { recursive: true, force: true });
    mkdirSync(outdir, { recursive: true });
    const outfile = join(outdir, 'index.mjs');
    const r = await build({ ...lambdaBuildOptions(resolve(REPO, f.entry), outdir, REPO), metafile: true, logLevel: 'error' });
    const { eager, lazy: allLazy } = loadedAtColdStart(r.metafile, outfile, f.withLazy);
    const lazy = f.withLazy ? allLazy : loadedAtColdStart(r.metafile, outfile).lazy;
    const files = f.withLazy ? [...eager, ...lazy] : eager;
    const code = Buffer.concat(files.map((o) => readFileSync(resolve(REPO, o))));
    const times: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < samples; i++) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
        cwd: outdir,
        env: { PATH: process.env.PATH, ...ENV, BUNDLE: outfile, PROBE: f.probe ? '1' : '0', LAZY: JSON.stringify(f.withLazy ? lazy.map((o) => resolve(REPO, o)) : []) },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'], // Powertools' "no metrics" warning goes to stderr: not ours to print
      });
      const j = JSON.parse(out.trim().split('\n').pop()!) as { init: number; first: number | null };
      times.push(j.init);
      if (j.first !== null) firsts.push(j.first);
    }
    const p = percentiles(times);
    const row: ColdStartRow = {
      fn: f.fn,
      entry: f.entry,
      bytes: code.length,
      gzipBytes: gzipSync(code).length,
      lazyBytes: f.withLazy ? 0 : lazy.reduce((n, o) => n + r.metafile.outputs[o]!.bytes, 0),
      initMs: round(p.p50, 1),
      initP90Ms: round(p.p90, 1),
      ...(firsts.length ? { firstInvokeMs: round(percentiles(firsts).p50, 1) } : {}),
      topPackages: composition(r.metafile, files),
    };
    rows.push(row);
    progress(
      `cold start ${f.fn.padEnd(18)} ${round(row.bytes / 1024, 0)} KB (${round(row.gzipBytes / 1024, 0)} KB gzip)` +
        (row.lazyBytes ? ` + ${round(row.lazyBytes / 1024, 0)} KB loaded on demand` : '') +
        `, import ${row.initMs} ms` +
        (row.firstInvokeMs !== undefined ? `, first invocation init ${row.firstInvokeMs} ms` : '') +
        `; largest: ${row.topPackages
          .slice(0, 3)
          .map((t) => `${t.name} ${round(t.bytes / 1024, 0)} KB`)
          .join(', ')}`,
    );
  }
  return rows;
}

/**
 * The output files a cold start loads (the entry and every chunk reached through static imports) and
 * those behind dynamic imports only, as paths relative to the repository (metafile keys). With `from`,
 * only the dynamic imports whose chunk holds that input module count as lazy (with what they import).
 */
export function loadedAtColdStart(meta: Metafile, entryFile: string, from?: string): { eager: string[]; lazy: string[] } {
  const entry = Object.keys(meta.outputs).find((o) => resolve(REPO, o) === entryFile);
  if (!entry) throw new Error(`no output ${entryFile} in the metafile`);
  const eager = new Set<string>();
  const dynamic = new Set<string>();
  const visit = (o: string): void => {
    if (eager.has(o)) return;
    eager.add(o);
    for (const i of meta.outputs[o]!.imports) {
      if (i.external) continue;
      if (i.kind === 'dynamic-import') dynamic.add(i.path);
      else visit(i.path);
    }
  };
  visit(entry);
  const lazy = new Set<string>();
  const visitLazy = (o: string): void => {
    if (eager.has(o) || lazy.has(o)) return;
    lazy.add(o);
    for (const i of meta.outputs[o]!.imports) if (!i.external) visitLazy(i.path);
  };
  for (const d of dynamic) if (from === undefined || Object.keys(meta.outputs[d]!.inputs).some((i) => i.endsWith(from))) visitLazy(d);
  return { eager: [...eager], lazy: [...lazy] };
}
