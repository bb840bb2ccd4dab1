// Jest transform with esbuild (already tally's bundler): TypeScript, and middy's ESM, to CommonJS.
// Replaces @swc/jest, whose platform binaries this registry does not all serve (npm ci then fails).
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { transformSync, version } = require('esbuild');

// Jest caches transformed files; without a key of its own, a change to the options below would keep
// serving output of the old ones.
const SELF = createHash('sha256').update(readFileSync(__filename)).update(version).digest('hex');

module.exports = {
  getCacheKey(source, file) {
    return createHash('sha256').update(SELF).update('\0').update(file).update('\0').update(source).digest('hex');
  },
  process(source, file) {
    const r = transformSync(source, {
      loader: file.endsWith('.ts') ? 'ts' : 'js',
      format: 'cjs',
      target: 'node22',
      // Jest's CommonJS runtime cannot run import() without --experimental-vm-modules: dynamic imports
      // (src/sampling/index.ts loads posthog-node on demand) become require() here, as in a CJS bundle.
      supported: { 'dynamic-import': false },
      sourcemap: 'inline',
      sourcefile: file,
    });
    return { code: r.code };
  },
};
