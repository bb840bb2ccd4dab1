/**
 * Lambda code built by local esbuild at synth time, with the options of build-options.ts (ESM, code
 * splitting, minified, source maps). NodejsFunction cannot split (it builds to a single `--outfile`), so
 * this uses the same local-bundling hook NodejsFunction uses, with esbuild's API.
 */
import * as path from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { lambdaBuildOptions, REPO_ROOT } from './build-options';

/** Lambda code for an entry file, built by local esbuild at synth time (skipped where CDK skips bundling). */
export function esbuildCode(entry: string): lambda.Code {
  return lambda.Code.fromAsset(REPO_ROOT, {
    // Hash of the output: the same code gives the same asset, whatever else changed in the repository.
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type, never pulled: local bundling always succeeds or throws.
      image: DockerImage.fromRegistry('dummy'),
      // CDK caches bundling results by the bundling options, and the local bundler below is a function that
      // does not serialise: the entry must appear in the options, or every function gets the first bundle.
      environment: { TALLY_ENTRY: path.relative(REPO_ROOT, entry) },
      local: {
        tryBundle(outputDir: string): boolean {
          // Loaded when bundling runs, not when the app is read: esbuild is a build-time dependency.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { buildSync } = require('esbuild') as typeof import('esbuild');
          buildSync(lambdaBuildOptions(entry, outputDir));
          return true;
        },
      },
    },
  });
}
