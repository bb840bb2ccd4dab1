/**
 * Everything the ingest function answers, independent of Lambda and middy: `POST /v1/tokens` mints
 * client tokens (./tokens.ts); the flag routes go to the flag proxy (src/http/flag-proxy.ts); the counting
 * routes go through the ingest pipeline (./ingest.ts) and, once the queue took the events, through
 * sampling (src/sampling/after-queue.ts), to the project's own PostHog when it has one. Errors are thrown
 * as {@link HttpError}s; the handler's middleware answers and counts them (src/http/errors.ts).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { OriginRules } from '../http/cors';
import { createFlagProxy, matchFlagRoute, type FlagProxyOptions } from '../http/flag-proxy';
import { json } from '../http/response';
import { matchRoute } from '../http/route-table';
import { METRICS, MetricUnit } from '../observability';
import { sampleQueuedEvents } from '../sampling/after-queue';
import type { IngestSampling } from '../sampling/types';
import { createIngest, type IngestDeps } from './ingest';
import { createTokenRoute } from './tokens';

/**
 * The ingest pipeline's dependencies (./ingest.ts: queue, keys and tokens, origins, limits, clock) —
 * `onLimitUnavailable` is this service's: it counts and logs — plus the routes' own.
 */
export interface IngestServiceDeps extends Omit<IngestDeps, 'onLimitUnavailable'> {
  /** Master secret client tokens are signed with; unset: `POST /v1/tokens` answers 503. */
  tokenSecret?: Buffer;
  logger?: Pick<Logger, 'warn'>;
  metrics?: Pick<Metrics, 'addMetric'>;
  /** Sampled events are captured raw to PostHog after the queue took them. Unset: no sampling. */
  sampling?: IngestSampling;
  /** The deployment's PostHog for the flag routes (projects with their own use theirs). Unset: 503 `flags_unavailable` for the others. */
  flags?: Omit<FlagProxyOptions, 'authenticate'>;
}

const POSTHOG_OK = json(200, { status: 1 });
const FLAGS_TIMEOUT_MS = 5000;

/** The ingest function's routes: the answer to one request, or a thrown {@link HttpError}. */
export function createIngestService(deps: IngestServiceDeps): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  const cors = deps.cors ?? new OriginRules([]);
  const ingest = createIngest({
    queue: deps.queue,
    auth: deps.auth,
    cors,
    rate: deps.rate,
    quota: deps.quota,
    limitTimeoutMs: deps.limitTimeoutMs,
    limits: deps.limits,
    now: deps.now,
    onLimitUnavailable: (limit, err) => {
      deps.metrics?.addMetric(METRICS.LimitsUnavailable, MetricUnit.Count, 1);
      deps.logger?.warn(`the ${limit} limit could not be checked; the request was admitted`, { error: err instanceof Error ? err.message : String(err) });
    },
  });
  const tokens = createTokenRoute({ auth: deps.auth, cors, tokenSecret: deps.tokenSecret, now: deps.now });
  const flagProxy = createFlagProxy({
    timeoutMs: FLAGS_TIMEOUT_MS,
    ...deps.flags,
    authenticate: async (credential, origin) => {
      const a = await deps.auth.authenticate(credential, 'ingest');
      cors.assertAllowed(a.project, origin);
      return a;
    },
  });
  const { sampling } = deps;
  return async (event) => {
    const method = event.requestContext.http.method;
    const flagRoute = matchFlagRoute(method, event.rawPath);
    if (flagRoute !== undefined) return flagProxy(event, flagRoute);
    if (matchRoute(method, event.rawPath)?.kind === 'tokens') return tokens(event);
    const r = await ingest(event);
    // The events are queued (the 2xx guarantee holds); only now is anything sent raw.
    if (sampling) await sampleQueuedEvents(sampling, r.events, deps, r.project.posthog);
    return r.route === 'native' ? json(202, { accepted: r.events.length }) : POSTHOG_OK;
  };
}
