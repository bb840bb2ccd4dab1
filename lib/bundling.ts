/**
 * ESM output lets handlers use top-level await (for example to resolve secrets during init). Bundled
 * CommonJS dependencies still call `require`, `__filename` and `__dirname`, which ESM does not define:
 * this banner provides them. Shared by the Lambda bundling (tally-function.ts) and the cold-start bench.
 */
export const ESM_BANNER = [
  "import { createRequire as __tallyCreateRequire } from 'node:module';",
  "import { fileURLToPath as __tallyFileURLToPath } from 'node:url';",
  "import { dirname as __tallyDirname } from 'node:path';",
  'const require = __tallyCreateRequire(import.meta.url);',
  'const __filename = __tallyFileURLToPath(import.meta.url);',
  'const __dirname = __tallyDirname(__filename);',
].join(' ');
