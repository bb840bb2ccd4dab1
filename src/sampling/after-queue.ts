/**
 * Sampling on the request path, after the queue took a request's events and only then: the sampled
 * ones are captured raw to PostHog and the request waits for that, at most the sampling bound and never
 * past the invocation's deadline (src/util/deadline.ts), so nothing is lost when Lambda freezes. A
 * sampling or PostHog failure is counted and logged; it never changes the answer. A request with nothing
 * sampled never waits on PostHog.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit, SAMPLING_METRICS } from '../observability';
import type { QueuedEvent } from '../types';
import { remainingMs } from '../util/deadline';
import { CaptureError, type IngestSampling, type PostHogDestination } from './types';

export interface SamplingReporting {
  metrics?: Pick<Metrics, 'addMetric'>;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Samples `events` (already queued) and captures the sampled ones raw, to `destination` (the events'
 * project's own PostHog) when given. Never throws.
 */
export async function sampleQueuedEvents(sampling: IngestSampling, events: readonly QueuedEvent[], { metrics, logger }: SamplingReporting, destination?: PostHogDestination): Promise<void> {
  let n = 0;
  try {
    const out = await sampling.sampler.sample(events);
    if (out.unavailable > 0) metrics?.addMetric(SAMPLING_METRICS.SamplingUnavailable, MetricUnit.Count, out.unavailable);
    n = out.sampled.length;
    if (n === 0) return;
    const t0 = performance.now();
    try {
      await sampling.capture.capture(out.sampled, Math.min(sampling.timeoutMs, remainingMs()), destination);
    } finally {
      metrics?.addMetric(SAMPLING_METRICS.SampleCaptureLatency, MetricUnit.Milliseconds, performance.now() - t0);
    }
    metrics?.addMetric(SAMPLING_METRICS.EventsSampled, MetricUnit.Count, n);
  } catch (err) {
    const failed = err instanceof CaptureError ? err.failed : n;
    if (err instanceof CaptureError && err.total > err.failed) metrics?.addMetric(SAMPLING_METRICS.EventsSampled, MetricUnit.Count, err.total - err.failed);
    if (failed > 0) metrics?.addMetric(SAMPLING_METRICS.SampleCaptureFailures, MetricUnit.Count, failed);
    logger?.warn('raw capture of sampled events failed; the request was answered regardless', { error: err instanceof Error ? err.message : String(err), failed });
  }
}
