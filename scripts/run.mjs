#!/usr/bin/env node
// Runs a TypeScript entry point (npm start, benchmarks): bundled by esbuild into CommonJS with the
// options of scripts/local-build.cjs (why: see there), then required in this process.
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { basename, resolve } from 'node:path';
import localBuild from './local-build.cjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run.mjs <entry.ts> [args…]');
  process.exit(2);
}
const outfile = resolve('.tally/build', basename(entry).replace(/\.ts$/, '.cjs'));
await build(localBuild.localBuildOptions(entry, outfile));
process.setSourceMapsEnabled(true);
process.argv = [process.argv[0], outfile, ...args];
createRequire(import.meta.url)(outfile);
