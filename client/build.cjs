#!/usr/bin/env node
// Builds @tally/client with the project's toolchain: esbuild bundles src/index.ts into dist/index.mjs
// (ESM) and dist/index.cjs (CommonJS), no dependencies inside (there are none) and no Node import (the
// code finds node:zlib and node:fs at run time); tsc writes the declarations to dist/types, as
// .d.ts (for require) and .d.mts (for import, with explicit .mjs specifiers as Node's ESM resolution
// wants).
//
//   node client/build.cjs [--outdir <dir>] [--no-types]        (npm run build:client)
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const ROOT = __dirname;

/** Node's ESM resolution needs explicit extensions: `./tally` → `./tally.mjs` (which resolves to tally.d.mts). */
function toEsmDeclarations(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) toEsmDeclarations(p);
    else if (name.endsWith('.d.ts')) {
      const src = readFileSync(p, 'utf8').replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+)\2/g, (_m, pre, q, spec) => `${pre}${q}${spec}.mjs${q}`);
      writeFileSync(p.replace(/\.d\.ts$/, '.d.mts'), src);
    }
  }
}

/**
 * Builds into `outDir` (default client/dist). `types: false` skips the declarations (tests that only
 * run the code build this way: esbuild alone takes milliseconds, tsc seconds).
 */
async function buildClient({ outDir = join(ROOT, 'dist'), types = true } = {}) {
  const { build } = require('esbuild');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const common = {
    entryPoints: [join(ROOT, 'src/index.ts')],
    bundle: true,
    // Neutral: the same code for Node, Deno, Bun, Workers and browsers.
    platform: 'neutral',
    target: 'es2022',
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  };
  await Promise.all([
    build({ ...common, format: 'esm', outfile: join(outDir, 'index.mjs') }),
    build({ ...common, format: 'cjs', outfile: join(outDir, 'index.cjs') }),
  ]);
  if (types) {
    const tsc = require.resolve('typescript/lib/tsc.js');
    const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json'), '--outDir', join(outDir, 'types')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`tsc failed (exit ${r.status})`);
    toEsmDeclarations(join(outDir, 'types'));
  }
  return outDir;
}

module.exports = { buildClient };

if (require.main === module) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--outdir');
  const outDir = i >= 0 ? resolve(args[i + 1]) : undefined;
  buildClient({ outDir, types: !args.includes('--no-types') }).then(
    (dir) => console.log(`@tally/client built in ${dir}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
