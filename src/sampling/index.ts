/**
 * Sampling for the ingest function, built from validated config (Lambda and `npm start` share it).
 * posthog-node is loaded only when sampling is on, so an ingest function without it starts as before.
 */
import type { PersonPropertyMapping } from './person';
import type { PostHogSamplerOptions } from './posthog';
import { DisabledSampler, NoopCapture } from './disabled';
import type { RawCapture, Sampler } from './types';

export * from './types';
export { matchFlagRoute, createFlagProxy, unavailableFlagProxy, type FlagRoute, type FlagProxy } from './flag-proxy';
export { DisabledSampler, NoopCapture } from './disabled';

/** What the ingest handler needs for sampling. */
export interface IngestSampling {
  sampler: Sampler;
  capture: RawCapture;
  /** Bound of the raw capture on the request path. */
  timeoutMs: number;
}

/** The config fields sampling reads (src/config.ts). */
export interface SamplingSettings {
  POSTHOG_API_KEY?: string;
  POSTHOG_HOST: string;
  POSTHOG_PERSONAL_API_KEY?: string;
  TALLY_SAMPLING_FLAG_KEY: string;
  TALLY_SAMPLING_PERSON_PROPERTIES: PersonPropertyMapping;
  TALLY_SAMPLING_TIMEOUT_MS: number;
  TALLY_SAMPLING_POLL_SECONDS: number;
}

export type SamplingLog = PostHogSamplerOptions['log'];

/** Whether the settings turn sampling on: both the project key and a personal/secret key. */
export const samplingEnabled = (c: SamplingSettings): boolean => Boolean(c.POSTHOG_API_KEY && c.POSTHOG_PERSONAL_API_KEY);

/** Sampling for these settings; the disabled pair when it is off. */
export function createSampling(c: SamplingSettings, log?: SamplingLog, fetchImpl?: PostHogSamplerOptions['fetch']): IngestSampling {
  const timeoutMs = c.TALLY_SAMPLING_TIMEOUT_MS;
  if (!samplingEnabled(c)) return { sampler: new DisabledSampler(), capture: new NoopCapture(), timeoutMs };
  // Required here, not imported above: an ingest function without sampling never initialises posthog-node
  // (esbuild bundles a require of a bundled module as a lazy initialiser).
  const { PostHogSampler } = require('./posthog') as typeof import('./posthog');
  const { PostHogRawCapture } = require('./capture') as typeof import('./capture');
  try {
    return {
      // Created at init: the definitions load while the first request is being queued.
      sampler: new PostHogSampler({
        projectKey: c.POSTHOG_API_KEY!,
        personalKey: c.POSTHOG_PERSONAL_API_KEY!,
        host: c.POSTHOG_HOST,
        flagKey: c.TALLY_SAMPLING_FLAG_KEY,
        personProperties: c.TALLY_SAMPLING_PERSON_PROPERTIES,
        requestTimeoutMs: timeoutMs,
        readyTimeoutMs: timeoutMs,
        pollIntervalMs: c.TALLY_SAMPLING_POLL_SECONDS * 1000,
        log,
        ...(fetchImpl ? { fetch: fetchImpl } : {}),
      }),
      capture: new PostHogRawCapture({ projectKey: c.POSTHOG_API_KEY!, host: c.POSTHOG_HOST, timeoutMs }),
      timeoutMs,
    };
  } catch (err) {
    log?.('error', 'sampling could not start; nothing will be sampled', { error: String(err) });
    return { sampler: new DisabledSampler(), capture: new NoopCapture(), timeoutMs };
  }
}
