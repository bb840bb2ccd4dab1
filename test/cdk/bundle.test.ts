/**
 * Real bundling, as `cdk synth` does it: local esbuild (no Docker), minified ESM with code splitting, a
 * source map, and the AWS SDK only in chunks loaded when `TALLY_AWS_CLIENT=sdk`. Each bundle must load in
 * plain Node and export `handler`; ingest's posthog-node half is a chunk that loads only when sampling is
 * configured, and then works. Ingest looks its keys up in DynamoDB: dynalite stands in (a worker thread,
 * so it answers while a bundle runs in a child process).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ensureTable, localAwsClientConfig, startDynamo, type Emulator } from '../../local/emulators';
import { type Synth, resourcesOfType, synth } from './support';

let outdir: string;
let s: Synth;
let dynamo: Emulator;
const assets: Record<string, string> = {};

beforeAll(async () => {
  dynamo = await startDynamo({ port: 0 });
  const client = new DynamoDBClient(localAwsClientConfig(dynamo.endpoint, 'us-east-1'));
  await ensureTable(client, 'bundle-test');
  client.destroy();
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-cdk-'));
  s = synth({}, {}, { bundle: true, outdir });
  s.app.synth();
  for (const [, f] of resourcesOfType(s.json, 'AWS::Lambda::Function')) {
    const name = String(f.Properties!.FunctionName).replace(/^tally-dev-/, '');
    const hash = String(f.Properties!.Code.S3Key).replace(/\.zip$/, '');
    assets[name] = path.join(outdir, `asset.${hash}`);
  }
}, 120_000);

afterAll(async () => {
  if (outdir) fs.rmSync(outdir, { recursive: true, force: true });
  await dynamo?.stop();
});

const NAMES = ['ingest', 'aggregator', 'query', 'rollup'];

/** Chunk files of an asset, as `chunks/<file>`. */
function chunks(dir: string): string[] {
  const c = path.join(dir, 'chunks');
  return fs.existsSync(c) ? fs.readdirSync(c).map((f) => `chunks/${f}`) : [];
}

/** What every probe of a built bundle runs with: a Lambda-like environment, its key imported from dynalite. */
const probeEnv = () => ({
  PATH: process.env.PATH ?? '',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDBUNDLETEST',
  AWS_SECRET_ACCESS_KEY: 'x',
  TALLY_API_KEYS: 'tally_bundle_test_key',
  TALLY_TABLE_NAME: 'bundle-test',
  AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
});

describe('function bundles', () => {
  it('one asset per function', () => {
    expect(Object.keys(assets).sort()).toEqual([...NAMES].sort());
  });

  /** The entry and the chunks it imports statically: what a cold start loads. */
  const eagerFiles = (dir: string): string[] => {
    const entry = fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8');
    return ['index.mjs', ...[...entry.matchAll(/from\s*"\.\/(chunks\/[\w-]+\.mjs)"/g)].map((m) => m[1]!)];
  };
  const sourcesOf = (dir: string, files: string[]): string[] =>
    files.flatMap((f) => (JSON.parse(fs.readFileSync(path.join(dir, `${f}.map`), 'utf8')) as { sources: string[] }).sources);

  it.each(NAMES)('%s: minified index.mjs with a source map; no AWS SDK at cold start, none needed from the runtime', (name) => {
    const dir = assets[name];
    // The entry, its map, and the chunks that dynamic imports load on demand.
    expect(fs.readdirSync(dir).filter((f) => f !== 'chunks').sort()).toEqual(['index.mjs', 'index.mjs.map']);
    for (const c of chunks(dir)) expect(c).toMatch(/^chunks\/[\w-]+\.mjs(\.map)?$/);
    const code = [path.join(dir, 'index.mjs'), ...chunks(dir).filter((c) => c.endsWith('.mjs')).map((c) => path.join(dir, c))].map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    // Minified: very long lines (only multi-line string literals keep their newlines).
    expect(code.length / code.split('\n').length).toBeGreaterThan(2000);
    expect(fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8')).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    // No SDK package is left for the runtime's copy (the load test below runs outside any node_modules),
    // except the two optional signers the SDK probes for inside try/catch (SigV4a, CRT), never used here.
    const external = [...code.matchAll(/(?:from|require\(|import\()\s*["']((?:@aws-sdk|@smithy)\/[^"']+)/g)].map((m) => m[1]);
    expect(external.filter((e) => e !== '@aws-sdk/signature-v4-crt' && e !== '@aws-sdk/signature-v4a')).toEqual([]);
    // What a cold start loads has no SDK: SQS, DynamoDB and Secrets Manager are called over
    // src/aws/json-client.ts by default. The SDK implementations (TALLY_AWS_CLIENT=sdk) are chunks behind a
    // dynamic import, loaded only when chosen.
    expect(sourcesOf(dir, eagerFiles(dir)).filter((src) => /node_modules\/(@aws-sdk|@smithy)\//.test(src))).toEqual([]);
    expect(code.includes('GetSecretValue')).toBe(true);
    const map = JSON.parse(fs.readFileSync(path.join(dir, 'index.mjs.map'), 'utf8'));
    expect(map.sources.some((src: string) => src.includes(`functions/${name}/index.ts`))).toBe(true);
    // sourcesContent is left out to keep the zip small.
    expect(map.sourcesContent).toBeUndefined();
    // Under Lambda's 50 MB zipped / 250 MB unzipped limits by far.
    expect(code.length).toBeLessThan(10 * 1024 * 1024);
  });

  it('ingest with TALLY_AWS_CLIENT=sdk: the SDK chunks load in the bundle; the key is imported and checked through the SDK DynamoDB client, the send goes through the SDK SQS client', () => {
    const file = path.join(assets.ingest, 'index.mjs');
    const probe = `
      const m = await import(${JSON.stringify(file)});
      const ev = { version: '2.0', routeKey: 'POST /v1/usage', rawPath: '/v1/usage', rawQueryString: '', headers: { authorization: 'Bearer tally_bundle_test_key' },
        body: '{"distinctId":"u"}', isBase64Encoded: false,
        requestContext: { http: { method: 'POST', path: '/v1/usage', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'x' }, requestId: 'r' } };
      const r = await m.handler(ev, { getRemainingTimeInMillis: () => 3000 });
      console.log(JSON.stringify({ status: r.statusCode, body: JSON.parse(r.body) }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
      env: {
        ...probeEnv(),
        TALLY_AWS_CLIENT: 'sdk',
        TALLY_QUEUE_URL: 'http://127.0.0.1:9/000000000000/q',
        AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        POWERTOOLS_METRICS_DISABLED: 'true',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { status: number; body: { error: string; message: string } };
    expect(result.status).toBe(503);
    expect(result.body.error).toBe('queue_unavailable');
  });

  it('ingest: posthog-node is not in what a cold start loads, only in a chunk behind the dynamic import', () => {
    const dir = assets.ingest;
    const entry = fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8');
    const staticChunks = [...entry.matchAll(/from\s*"\.\/(chunks\/[\w-]+\.mjs)"/g)].map((m) => m[1]!);
    const eager = [entry, ...staticChunks.map((c) => fs.readFileSync(path.join(dir, c), 'utf8'))].join('\n');
    // No posthog-node module in what a cold start loads (its name may appear in messages, not its code).
    expect(sourcesOf(dir, ['index.mjs', ...staticChunks]).filter((src) => /node_modules\/(posthog-node|@posthog)\//.test(src))).toEqual([]);
    const lazy = [...entry.matchAll(/import\(\s*"\.\/(chunks\/[\w-]+\.mjs)"\s*\)/g)].map((m) => m[1]!);
    expect(lazy.length).toBeGreaterThan(0);
    const all = chunks(dir).filter((c) => c.endsWith('.mjs')).map((c) => fs.readFileSync(path.join(dir, c), 'utf8'));
    expect(all.some((c) => c.includes('posthog-node'))).toBe(true);
    const lazySources = sourcesOf(dir, lazy);
    expect(lazySources.some((src) => /node_modules\/posthog-node\//.test(src))).toBe(true);
    expect(Buffer.byteLength(eager)).toBeLessThan(250 * 1024);
  });

  it('ingest with sampling configured: the chunk loads in the bundle and its sampler asks PostHog for the flag definitions', () => {
    const file = path.join(assets.ingest, 'index.mjs');
    const probe = `
      const calls = [];
      globalThis.fetch = async (url) => { calls.push(String(url)); throw new Error('offline'); };
      const m = await import(${JSON.stringify(file)});
      const ev = { version: '2.0', routeKey: '$default', rawPath: '/nowhere', rawQueryString: '', headers: {}, isBase64Encoded: false,
        requestContext: { http: { method: 'GET', path: '/nowhere', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'x' }, requestId: 'r' } };
      const r = await m.handler(ev, {});
      await new Promise((res) => setTimeout(res, 300));
      console.log(JSON.stringify({ status: r.statusCode, calls }));
      process.exit(0); // the sampler's definitions poll would keep the process alive`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
      env: {
        ...probeEnv(),
        TALLY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/q',
        POSTHOG_API_KEY: 'phc_bundle_test',
        POSTHOG_PERSONAL_API_KEY: 'phx_bundle_test',
        POSTHOG_HOST: 'http://posthog.invalid',
        TALLY_SAMPLING_TIMEOUT_MS: '200',
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_METRICS_DISABLED: 'true',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out).not.toContain('sampling could not start');
    const result = JSON.parse(out.trim().split('\n').pop()!) as { status: number; calls: string[] };
    expect(result.status).toBe(404);
    expect(result.calls.some((u) => u.startsWith('http://posthog.invalid/') && /flags\/definitions|local_evaluation/.test(u))).toBe(true);
  });

  it.each(NAMES)('%s: loads in Node, outside any node_modules, and exports handler', (name) => {
    expect(path.relative(os.tmpdir(), assets[name]).startsWith('..')).toBe(false);
    const file = path.join(assets[name], 'index.mjs');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(file)}); console.log(typeof m.handler);`], {
      // No AWS settings needed: handlers initialise on the first invocation, not at import.
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('function');
  });
});
