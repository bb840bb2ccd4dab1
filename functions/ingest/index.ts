/** Lambda entry point: ingest (API Gateway HTTP API, payload v2; or every route, behind a Function URL). */
import { loadIngestConfig } from '../../src/config';
import { allRoutes } from '../../src/http/all-routes';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { ConfiguredKeysImport, createProjectServices } from '../../src/runtime/projects';
import { createEventQueue } from '../../src/runtime/queue';
import { createDynamoApi } from '../../src/runtime/dynamo';
import { createSampling } from '../../src/sampling';
import { lazy } from '../lazy';
import { createIngestHandler } from './handler';

/**
 * The PostHog secrets of sampling are optional for ingest: if one cannot be read, ingest keeps accepting
 * events without sampling (and logs why) instead of failing every request, and tries the secret again
 * later (functions/lazy.ts); once it resolves, the handler is rebuilt with sampling on. The token master
 * secret (`TALLY_TOKEN_SECRET`) is required.
 */
export const OPTIONAL_SECRETS = ['POSTHOG_API_KEY', 'POSTHOG_PERSONAL_API_KEY'] as const;

/** Key lookups, rate-limit leases and quota reads: a short bound per attempt, so a slow DynamoDB costs a request little. */
export const PROJECTS_DYNAMODB = { maxAttempts: 3, requestTimeoutMs: 1000 } as const;

const logger = createLogger(SERVICES.ingest);
const log = (level: 'warn' | 'error', message: string, extra?: Record<string, unknown>) => logger[level](message, extra ?? {});

export const handler = lazy(
  async () => {
    const c = loadIngestConfig();
    const sampling = await createSampling(c, (level, message, extra) => logger[level](message, extra ?? {}));
    const db = createDynamoApi(c, PROJECTS_DYNAMODB);
    const projects = createProjectServices({
      db,
      tableName: c.TALLY_TABLE_NAME,
      // Quotas read the counters: that code is loaded on the first quota check, not at cold start.
      usage: async () => new (await import('../../src/store/dynamo')).DynamoUsageStore(db, { tableName: c.TALLY_TABLE_NAME }),
      deploymentOrigins: c.TALLY_CORS_ORIGINS,
      tokenSecret: c.TALLY_TOKEN_SECRET,
      log,
    });
    // The configured keys become keys of project default; if DynamoDB is unreachable now, later (never fatal).
    const imported = new ConfiguredKeysImport(projects.admin, c.TALLY_API_KEYS, log);
    await imported.run();
    const ingest = createIngestHandler({
      queue: createEventQueue(c),
      ...projects,
      logger,
      metrics: createMetrics(SERVICES.ingest, logger),
      sampling,
      limits: { maxEventAgeMs: c.TALLY_MAX_EVENT_AGE_DAYS * 86_400_000 },
      flags: c.POSTHOG_API_KEY ? { host: c.POSTHOG_HOST, projectKey: c.POSTHOG_API_KEY, timeoutMs: c.TALLY_FLAGS_PROXY_TIMEOUT_MS } : { timeoutMs: c.TALLY_FLAGS_PROXY_TIMEOUT_MS },
    });
    // Behind a Function URL, ingest is the only function clients reach: it serves the query routes too,
    // with the query function's code, loaded on the first query.
    return imported.wrap(c.TALLY_FRONT_DOOR === 'function-url' ? allRoutes({ ingest, query: async () => (await import('../query/index')).handler }) : ingest);
  },
  { optionalSecrets: OPTIONAL_SECRETS, log: (message, error) => logger.error(message, { error: String(error) }) },
);
