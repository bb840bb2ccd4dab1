/**
 * Sampling for the ingest function, built from validated config (Lambda and `npm start` share it).
 * posthog-node is loaded only when sampling is on (see createSampling).
 */
import type { PostHogSamplerOptions } from './posthog';
import { DisabledSampler, NoopCapture } from './disabled';
import type { IngestSampling, SamplingLog, SamplingSettings } from './types';

export * from './types';
export { DisabledSampler, NoopCapture } from './disabled';

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
