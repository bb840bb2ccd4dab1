// esbuild options for running a TypeScript entry point on one machine (npm start, the benchmark's child
// processes): one CommonJS bundle with an inline source map. middy 7 is ESM-only with an import-only
// exports map, which on-the-fly TypeScript runners (tsx) cannot require; esbuild bundles it like the
// Lambda build does. The emulators stay external: dynalite loads a native LevelDB binding, fauxqs uses
// node:sqlite. Used by scripts/run.mjs and bench/lib.ts, so both build the same way.
'use strict';

/** @returns {import('esbuild').BuildOptions} */
function localBuildOptions(entry, outfile) {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    sourcemap: 'inline',
    external: ['dynalite', 'fauxqs', 'artillery'],
    logLevel: 'warning',
  };
}

module.exports = { localBuildOptions };
