// Jest transform with esbuild (already tally's bundler): TypeScript, and middy's ESM, to CommonJS.
// Replaces @swc/jest, whose platform binaries this registry does not all serve (npm ci then fails).
const { transformSync } = require('esbuild');

module.exports = {
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
