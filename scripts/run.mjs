#!/usr/bin/env node
// Runs a TypeScript entry point (npm start, benchmarks) the way Lambda runs tally: bundled by esbuild
// into CommonJS. middy 7 is ESM-only with an import-only exports map, which on-the-fly TypeScript
// runners (tsx) cannot require; esbuild bundles it like the Lambda build does. The emulators stay
// external: dynalite loads a native LevelDB binding, fauxqs uses node:sqlite.
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { basename, resolve } from 'node:path';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run.mjs <entry.ts> [args…]');
  process.exit(2);
}
const outfile = resolve('.tally/build', basename(entry).replace(/\.ts$/, '.cjs'));
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  sourcemap: 'inline',
  external: ['dynalite', 'fauxqs', 'artillery'],
  logLevel: 'warning',
});
process.setSourceMapsEnabled(true);
process.argv = [process.argv[0], outfile, ...args];
createRequire(import.meta.url)(outfile);
