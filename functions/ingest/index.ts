/** Lambda entry point: ingest (API Gateway HTTP API, payload v2). */
import { loadIngestConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createEventQueue } from '../../src/runtime/queue';
import { createSampling } from '../../src/sampling';
import { resolveSecretEnv } from '../../src/secrets';
import { lazy } from '../lazy';
import { createIngestHandler, type ApiHandler } from './handler';

/**
 * The PostHog secrets of sampling are optional for ingest: if one cannot be read, ingest keeps
 * accepting events without sampling (and logs why) instead of failing every request at cold start.
 * They are resolved here, before lazy() resolves the required ones.
 */
export const OPTIONAL_SECRETS = ['POSTHOG_API_KEY', 'POSTHOG_PERSONAL_API_KEY'] as const;

export async function resolveOptionalSecrets(env: Record<string, string | undefined>, log: (message: string, error: unknown) => void): Promise<void> {
  const sub: Record<string, string | undefined> = {};
  for (const name of OPTIONAL_SECRETS) {
    sub[name] = env[name];
    sub[`${name}_SECRET_ARN`] = env[`${name}_SECRET_ARN`];
  }
  try {
    await resolveSecretEnv(sub);
    for (const name of OPTIONAL_SECRETS) if (sub[name] !== undefined) env[name] = sub[name];
  } catch (err) {
    log('sampling and flag routes are off: a PostHog secret could not be read', err);
    for (const name of OPTIONAL_SECRETS) {
      delete env[`${name}_SECRET_ARN`];
      if (sub[name] === undefined) delete env[name];
    }
  }
}

const logger = createLogger(SERVICES.ingest);
let optional: Promise<void> | undefined;

const inner = lazy(async () => {
  const c = loadIngestConfig();
  const sampling = await createSampling(c, (level, message, extra) => logger[level](message, extra ?? {}));
  return createIngestHandler({
    queue: createEventQueue(c),
    apiKeys: c.TALLY_API_KEYS,
    logger,
    metrics: createMetrics(SERVICES.ingest, logger),
    sampling,
    flags: c.POSTHOG_API_KEY ? { host: c.POSTHOG_HOST, projectKey: c.POSTHOG_API_KEY, timeoutMs: c.TALLY_FLAGS_PROXY_TIMEOUT_MS } : undefined,
  });
});

export const handler: ApiHandler = async (event, context) => {
  optional ??= resolveOptionalSecrets(process.env, (message, error) => logger.error(message, { error: String(error) }));
  await optional;
  return inner(event, context);
};
