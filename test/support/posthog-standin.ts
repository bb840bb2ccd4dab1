/**
 * The PostHog stand-in of the tests: the one of `npm start` (local/posthog-standin.ts), serving the recorded
 * posthog-node definitions unless told otherwise.
 */
import path from 'node:path';
import { startPosthogStandin as startLocal, type StandinOptions, type PosthogStandin } from '../../local/posthog-standin';

export * from '../../local/posthog-standin';

/** The recorded posthog-node 5.70 definitions (test/fixtures/posthog-node-5.70). */
export const DEFAULT_FLAGS_FIXTURE = path.resolve(__dirname, '../fixtures/posthog-node-5.70/flags-definitions.json');

/** Starts the stand-in with the recorded definitions by default. Stop it in `afterAll`. */
export function startPosthogStandin(opts: StandinOptions = {}): Promise<PosthogStandin> {
  return startLocal({ ...(opts.flagDefinitions === undefined ? { flagDefinitionsFile: DEFAULT_FLAGS_FIXTURE } : {}), ...opts });
}

/** Alias with the name the tests use: `await start({ port: 0 })`. */
export const start = startPosthogStandin;
