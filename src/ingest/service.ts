/**
 * Everything the ingest function answers, independent of Lambda and middy: the flag routes go to the
 * flag proxy (src/http/flag-proxy.ts); the counting routes go through the ingest pipeline (./ingest.ts)
 * and, once the queue took the events, through sampling (src/sampling/after-queue.ts). Errors are thrown
 * as {@link HttpError}s; the handler's middleware answers and counts them (src/http/errors.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createFlagProxy, matchFlagRoute, unavailableFlagProxy, type FlagProxyOptions } from '../http/flag-proxy';
import { json } from '../http/response';
import type { EventQueue } from '../queue/types';
import { sampleQueuedEvents } from '../sampling/after-queue';
import type { IngestSampling } from '../sampling/types';
import { createKeyChecker } from './auth';
import { createIngest, type IngestDeps } from './ingest';

export interface IngestServiceDeps {
  queue: EventQueue;
  apiKeys: readonly string[];
  logger?: Pick<Logger, 'warn'>;
  metrics?: Pick<Metrics, 'addMetric'>;
  limits?: IngestDeps['limits'];
  now?: () => number;
  /** Sampled events are captured raw to PostHog after the queue took them. Unset: no sampling. */
  sampling?: IngestSampling;
  /** Where the flag routes go. Unset: they answer 503 `flags_unavailable`. */
  flags?: Omit<FlagProxyOptions, 'checkKey'>;
}

const POSTHOG_OK = json(200, { status: 1 });

/** The ingest function's routes: the answer to one request, or a thrown {@link HttpError}. */
export function createIngestService(deps: IngestServiceDeps): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  const checkKey = createKeyChecker(deps.apiKeys);
  const ingest = createIngest({ queue: deps.queue, checkKey, limits: deps.limits, now: deps.now });
  const flagProxy = deps.flags ? createFlagProxy({ ...deps.flags, checkKey }) : unavailableFlagProxy;
  const { sampling } = deps;
  return async (event) => {
    const flagRoute = matchFlagRoute(event.requestContext.http.method, event.rawPath);
    if (flagRoute !== undefined) return flagProxy(event, flagRoute);
    const r = await ingest(event);
    // The events are queued (the 2xx guarantee holds); only now is anything sent raw.
    if (sampling) await sampleQueuedEvents(sampling, r.events, deps);
    return r.route === 'native' ? json(202, { accepted: r.events.length }) : POSTHOG_OK;
  };
}
