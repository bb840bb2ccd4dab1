/**
 * The half of sampling that needs posthog-node: loaded by {@link createSampling} only when sampling is
 * on, and split into its own chunk by the Lambda build (lib/bundling.ts).
 */
import { PostHogRawCapture } from './capture';
import type { IngestSampling, SamplingLog, SamplingSettings } from './types';
import { PostHogSampler, type PostHogSamplerOptions } from './posthog';

/** Sampler and raw capture for settings that turn sampling on (both PostHog keys present). */
export function createEnabledSampling(c: SamplingSettings, timeoutMs: number, log?: SamplingLog, fetchImpl?: PostHogSamplerOptions['fetch']): IngestSampling {
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
    capture: new PostHogRawCapture({ projectKey: c.POSTHOG_API_KEY!, host: c.POSTHOG_HOST, timeoutMs, ...(c.POSTHOG_HTTP === 'fetch' ? { fetch: globalThis.fetch } : {}) }),
    timeoutMs,
  };
}
