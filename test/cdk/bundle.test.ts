/**
 * Real bundling, as `cdk synth` does it: local esbuild (no Docker), minified ESM with a source map and the
 * AWS SDK inside. Each bundle must load in plain Node and export `handler`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Synth, resourcesOfType, synth } from './support';

let outdir: string;
let s: Synth;
const assets: Record<string, string> = {};

beforeAll(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-cdk-'));
  s = synth({}, {}, { bundle: true, outdir });
  s.app.synth();
  for (const [, f] of resourcesOfType(s.json, 'AWS::Lambda::Function')) {
    const name = String(f.Properties!.FunctionName).replace(/^tally-dev-/, '');
    const hash = String(f.Properties!.Code.S3Key).replace(/\.zip$/, '');
    assets[name] = path.join(outdir, `asset.${hash}`);
  }
}, 120_000);

afterAll(() => {
  if (outdir) fs.rmSync(outdir, { recursive: true, force: true });
});

const NAMES = ['ingest', 'aggregator', 'query', 'outbox'];

describe('function bundles', () => {
  it('one asset per function', () => {
    expect(Object.keys(assets).sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)('%s: minified index.mjs with a source map, AWS SDK bundled in', (name) => {
    const dir = assets[name];
    expect(fs.readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
    const code = fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8');
    // Minified: very long lines (only multi-line string literals keep their newlines).
    expect(code.length / code.split('\n').length).toBeGreaterThan(2000);
    expect(code).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    // The SDK is inside, not left for the runtime's copy (the load test below runs outside any node_modules).
    // Only the optional CRT signers (SigV4a, which tally never uses) are left as guarded requires.
    const external = [...code.matchAll(/(?:from|require\(|import\()\s*["']((?:@aws-sdk|@smithy)\/[^"']+)/g)].map((m) => m[1]);
    expect(external.filter((e) => !/^@aws-sdk\/signature-v4(-crt|a)$/.test(e))).toEqual([]);
    expect(code.includes('GetSecretValue')).toBe(true);
    const map = JSON.parse(fs.readFileSync(path.join(dir, 'index.mjs.map'), 'utf8'));
    expect(map.sources.some((src: string) => src.includes(`functions/${name}/index.ts`))).toBe(true);
    // sourcesContent is left out to keep the zip small.
    expect(map.sourcesContent).toBeUndefined();
    // Under Lambda's 50 MB zipped / 250 MB unzipped limits by far.
    expect(fs.statSync(path.join(dir, 'index.mjs')).size).toBeLessThan(5 * 1024 * 1024);
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
