/**
 * What `npm start` samples with (docs/SAMPLING.md), from its config: against PostHog when both keys are
 * set, else against the local flag file (local/flags-definitions.json), sampled events appended to
 * `<data dir>/posthog-sampled.jsonl`. The bench's local stack (bench/stack-worker.ts) uses it too, so it
 * measures what `npm start` runs.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, type LocalConfig } from '../src/config';
import type { LocalSamplingOptions } from './stack';

export function localSampling(c: LocalConfig, dataDir: string): { sampling: LocalSamplingOptions | undefined; samplingLine: string } {
  const sampledJsonl = join(dataDir, 'posthog-sampled.jsonl');
  const flagsFile = resolve(c.TALLY_FLAGS_FILE);
  let samplingLine: string;
  let sampling: LocalSamplingOptions | undefined;
  const common = {
    flagKey: c.TALLY_SAMPLING_FLAG_KEY,
    personProperties: c.TALLY_SAMPLING_PERSON_PROPERTIES,
    timeoutMs: c.TALLY_SAMPLING_TIMEOUT_MS,
    pollSeconds: c.TALLY_SAMPLING_POLL_SECONDS,
    flagsProxyTimeoutMs: c.TALLY_FLAGS_PROXY_TIMEOUT_MS,
    posthogHttp: c.POSTHOG_HTTP,
  };
  const mapped = c.TALLY_SAMPLING_PERSON_PROPERTIES.length ? `, person properties ${c.TALLY_SAMPLING_PERSON_PROPERTIES.map(([p, e]) => (p === e ? p : `${p}=${e}`)).join(',')}` : '';
  if (c.TALLY_SAMPLING === 'off') {
    samplingLine = 'off (TALLY_SAMPLING=off)';
    sampling = c.POSTHOG_API_KEY ? { ...common, posthog: { host: c.POSTHOG_HOST, projectKey: c.POSTHOG_API_KEY } } : undefined;
  } else if (c.POSTHOG_API_KEY) {
    sampling = { ...common, posthog: { host: c.POSTHOG_HOST, projectKey: c.POSTHOG_API_KEY, personalKey: c.POSTHOG_PERSONAL_API_KEY } };
    samplingLine = c.POSTHOG_PERSONAL_API_KEY
      ? `flag "${c.TALLY_SAMPLING_FLAG_KEY}" from ${c.POSTHOG_HOST}${mapped}; sampled events go to PostHog raw`
      : 'off: set POSTHOG_PERSONAL_API_KEY (phx_/phs_) to evaluate the flag locally';
  } else {
    if (!existsSync(flagsFile)) throw new ConfigError([`TALLY_FLAGS_FILE: ${flagsFile} does not exist`]);
    sampling = { ...common, flagsFile, capturedFile: sampledJsonl };
    samplingLine = `flag "${c.TALLY_SAMPLING_FLAG_KEY}" from ${flagsFile}${mapped}; sampled events appended to ${sampledJsonl}`;
  }

  return { sampling, samplingLine };
}
