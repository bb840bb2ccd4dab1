/**
 * The ingest Lambda: a thin middy wrapper over {@link createIngest}. The same factory serves
 * Lambda (index.ts), `npm start` and the tests, each with its own queue.
 *
 * Sampling (docs/SAMPLING.md): after the queue took a request's events, and only then, the sampled ones
 * are captured raw to PostHog and the handler waits for that, at most `sampling.timeoutMs` (and never past
 * the invocation's remaining time), so nothing is lost when Lambda freezes. A sampling or PostHog
 * failure is counted and logged; it never changes the answer. A request with nothing sampled never
 * waits on PostHog.
 *
 * Flag routes (`/flags`, `/flags/definitions`, `/decide`) are forwarded to PostHog (src/http/flag-proxy.ts).
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { createKeyChecker } from '../../src/ingest/auth';
import { createIngest, type IngestDeps } from '../../src/ingest/ingest';
import { httpErrors } from '../../src/http/errors';
import { json } from '../../src/http/response';
import { METRICS, MetricUnit, SAMPLING_METRICS } from '../../src/observability';
import type { EventQueue } from '../../src/queue/types';
import { createFlagProxy, matchFlagRoute, unavailableFlagProxy, type FlagProxyOptions } from '../../src/http/flag-proxy';
import { CaptureError, type IngestSampling } from '../../src/sampling';
import type { QueuedEvent } from '../../src/types';

export interface IngestHandlerDeps {
  queue: EventQueue;
  apiKeys: readonly string[];
  logger?: Logger;
  metrics?: Metrics;
  limits?: IngestDeps['limits'];
  now?: () => number;
  /** Sampled events are captured raw to PostHog after the queue took them. Unset: no sampling. */
  sampling?: IngestSampling;
  /** Where the flag routes go. Unset: they answer 503 `flags_unavailable`. */
  flags?: Omit<FlagProxyOptions, 'checkKey'>;
}

export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

const POSTHOG_OK = json(200, { status: 1 });
/** Flag-route answers that mean PostHog could not be asked (src/http/flag-proxy.ts). */
const FLAG_ROUTE_FAILURES = new Set(['flags_unavailable', 'posthog_timeout', 'posthog_unreachable']);
/** Time kept for answering after the raw capture, when the invocation is about to time out. */
const ANSWER_RESERVE_MS = 500;

export function createIngestHandler(deps: IngestHandlerDeps): ApiHandler {
  const checkKey = createKeyChecker(deps.apiKeys);
  const ingest = createIngest({ queue: deps.queue, checkKey, limits: deps.limits, now: deps.now });
  const flagProxy = deps.flags ? createFlagProxy({ ...deps.flags, checkKey }) : unavailableFlagProxy;
  const { metrics, logger, sampling } = deps;

  /** Samples and captures; never throws and never waits longer than the sampling bound. */
  const sampleAndCapture = async (events: QueuedEvent[], context: Context | undefined): Promise<void> => {
    if (!sampling) return;
    let n = 0;
    try {
      const out = await sampling.sampler.sample(events);
      if (out.unavailable > 0) metrics?.addMetric(SAMPLING_METRICS.SamplingUnavailable, MetricUnit.Count, out.unavailable);
      n = out.sampled.length;
      if (n === 0) return;
      const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() - ANSWER_RESERVE_MS : Infinity;
      const t0 = performance.now();
      try {
        await sampling.capture.capture(out.sampled, Math.min(sampling.timeoutMs, remaining));
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
  };

  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>({ timeoutEarlyInMillis: 0 })
    .use(
      httpErrors({
        logger,
        onReject: (err) => {
          if (!metrics) return;
          if (err.code === 'queue_unavailable') {
            metrics.addMetric(METRICS.QueueSendFailures, MetricUnit.Count, 1);
            return;
          }
          if (FLAG_ROUTE_FAILURES.has(err.code)) {
            metrics.addMetric(SAMPLING_METRICS.FlagProxyFailures, MetricUnit.Count, 1);
            return;
          }
          const m = metrics.singleMetric();
          m.addDimension('reason', err.code);
          m.addMetric(METRICS.RequestsRejected, MetricUnit.Count, 1);
        },
      }),
    )
    .handler(async (event, context) => {
      const flagRoute = matchFlagRoute(event.requestContext.http.method, event.rawPath);
      if (flagRoute !== undefined) return flagProxy(event, flagRoute);
      const r = await ingest(event);
      metrics?.addMetric(METRICS.EventsAccepted, MetricUnit.Count, r.events.length);
      metrics?.addMetric(METRICS.QueueSendLatency, MetricUnit.Milliseconds, r.queueMs);
      // The events are queued (the 2xx guarantee holds); only now is anything sent raw.
      await sampleAndCapture(r.events, context);
      return r.route === 'native' ? json(202, { accepted: r.events.length }) : POSTHOG_OK;
    });
  if (!metrics) return handler as unknown as ApiHandler;
  return async (event, context) => {
    try {
      return await handler(event, context);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
