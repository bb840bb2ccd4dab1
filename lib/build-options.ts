/**
 * How tally's Lambda code is built: local esbuild (no Docker), one ESM bundle per function, minified and
 * tree-shaken, with a source map. Code splitting is on, so a dynamic `import()` becomes a chunk that is
 * loaded only when reached: the ingest function keeps posthog-node (213 KB) out of its cold start
 * unless sampling is configured. NodejsFunction cannot split (it builds to a single `--outfile`), so the
 * build runs through the same local-bundling hook NodejsFunction uses (bundling.ts). These options are
 * shared by the CDK and the cold-start benchmark, so both measure the same output; this file imports
 * nothing from the CDK so the benchmark can use it.
 */
import * as path from 'node:path';
import type { BuildOptions } from 'esbuild';

/** Repository root: entries, tsconfig.json and node_modules are found from here. */
export const REPO_ROOT = path.resolve(__dirname, '..');

/**
 * ESM output lets handlers use top-level await (for example to resolve secrets during init). Bundled
 * CommonJS dependencies still call `require`, `__filename` and `__dirname`, which ESM does not define:
 * this banner provides them (in the entry and in each chunk, each its own module scope).
 */
export const ESM_BANNER = [
  "import { createRequire as __tallyCreateRequire } from 'node:module';",
  "import { fileURLToPath as __tallyFileURLToPath } from 'node:url';",
  "import { dirname as __tallyDirname } from 'node:path';",
  'const require = __tallyCreateRequire(import.meta.url);',
  'const __filename = __tallyFileURLToPath(import.meta.url);',
  'const __dirname = __tallyDirname(__filename);',
].join(' ');

/** esbuild options for one function: `<outdir>/index.mjs` exporting `handler`, chunks under `chunks/`. */
export function lambdaBuildOptions(entry: string, outdir: string, root = REPO_ROOT): BuildOptions {
  return {
    entryPoints: { index: entry },
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    // Prefer ESM entry points of dependencies: they tree-shake better than CommonJS.
    mainFields: ['module', 'main'],
    banner: { js: ESM_BANNER },
    minify: true,
    // Stack traces point at the TypeScript source (NODE_OPTIONS=--enable-source-maps); names and lines
    // only, not the sources, to keep the zip small.
    sourcemap: true,
    sourcesContent: false,
    // The AWS SDK is bundled too: the exact versions the tests ran against, tree-shaken to what is used.
    external: [],
    tsconfig: path.join(root, 'tsconfig.json'),
    absWorkingDir: root,
    logLevel: 'warning',
  };
}

