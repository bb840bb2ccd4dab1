/** Lambda entry point: ingest (API Gateway HTTP API, payload v2; or every route, behind a Function URL). */
import { loadIngestConfig } from '../../src/config';
import { allRoutes } from '../../src/http/all-routes';
import { originAllowList } from '../../src/http/cors';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createEventQueue } from '../../src/runtime/queue';
import { createSampling } from '../../src/sampling';
import { lazy } from '../lazy';
import { createIngestHandler } from './handler';

/**
 * The PostHog secrets of sampling are optional for ingest: if one cannot be read, ingest keeps accepting
 * events without sampling (and logs why) instead of failing every request, and tries the secret again
 * later (functions/lazy.ts); once it resolves, the handler is rebuilt with sampling on.
 */
export const OPTIONAL_SECRETS = ['POSTHOG_API_KEY', 'POSTHOG_PERSONAL_API_KEY'] as const;

const logger = createLogger(SERVICES.ingest);

export const handler = lazy(
  async () => {
    const c = loadIngestConfig();
    const sampling = await createSampling(c, (level, message, extra) => logger[level](message, extra ?? {}));
    const ingest = createIngestHandler({
      queue: createEventQueue(c),
      apiKeys: c.TALLY_API_KEYS,
      logger,
      metrics: createMetrics(SERVICES.ingest, logger),
      sampling,
      cors: c.TALLY_CORS_ORIGINS.length ? originAllowList(c.TALLY_CORS_ORIGINS) : undefined,
      limits: { maxEventAgeMs: c.TALLY_MAX_EVENT_AGE_DAYS * 86_400_000 },
      flags: c.POSTHOG_API_KEY ? { host: c.POSTHOG_HOST, projectKey: c.POSTHOG_API_KEY, timeoutMs: c.TALLY_FLAGS_PROXY_TIMEOUT_MS } : undefined,
    });
    // Behind a Function URL, ingest is the only function clients reach: it serves the query routes too,
    // with the query function's code, loaded on the first query.
    return c.TALLY_FRONT_DOOR === 'function-url' ? allRoutes({ ingest, query: async () => (await import('../query/index')).handler }) : ingest;
  },
  { optionalSecrets: OPTIONAL_SECRETS, log: (message, error) => logger.error(message, { error: String(error) }) },
);
