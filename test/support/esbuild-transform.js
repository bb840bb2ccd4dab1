// Jest transform with esbuild (already tally's bundler): TypeScript, and middy's ESM, to CommonJS.
// Replaces @swc/jest, whose platform binaries this registry does not all serve (npm ci then fails).
const { transformSync } = require('esbuild');

module.exports = {
  process(source, file) {
    const r = transformSync(source, {
      loader: file.endsWith('.ts') ? 'ts' : 'js',
      format: 'cjs',
      target: 'node22',
      sourcemap: 'inline',
      sourcefile: file,
    });
    return { code: r.code };
  },
};
