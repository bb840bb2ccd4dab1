/**
 * Sampling for the ingest function, built from validated config (Lambda and `npm start` share it).
 * posthog-node is loaded only when sampling is on (see createSampling).
 */
import type { PersonPropertyMapping } from './person';
import type { PostHogSamplerOptions } from './posthog';
import { DisabledSampler, NoopCapture } from './disabled';
import type { RawCapture, Sampler } from './types';

export * from './types';
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

/**
 * Sampling for these settings; the disabled pair when it is off. The posthog-node half (./enabled) is a
 * dynamic import: the Lambda build splits it into its own chunk, so an ingest function without sampling
 * neither loads nor parses posthog-node (213 KB of the 319 KB it would otherwise weigh).
 */
export async function createSampling(c: SamplingSettings, log?: SamplingLog, fetchImpl?: PostHogSamplerOptions['fetch']): Promise<IngestSampling> {
  const timeoutMs = c.TALLY_SAMPLING_TIMEOUT_MS;
  const disabled = (): IngestSampling => ({ sampler: new DisabledSampler(), capture: new NoopCapture(), timeoutMs });
  if (!samplingEnabled(c)) return disabled();
  try {
    const { createEnabledSampling } = await import('./enabled');
    return createEnabledSampling(c, timeoutMs, log, fetchImpl);
  } catch (err) {
    log?.('error', 'sampling could not start; nothing will be sampled', { error: String(err) });
    return disabled();
  }
}
