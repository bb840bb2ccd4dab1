/** Lambda entry point: usage queries and health (API Gateway HTTP API or Function URL, payload v2). */
import { loadQueryConfig } from '../../src/config';
import { originAllowList } from '../../src/http/cors';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createStore } from '../../src/runtime/store';
import { lazy } from '../lazy';
import { createQueryHandler } from './handler';

export const handler = lazy(() => {
  const c = loadQueryConfig();
  const logger = createLogger(SERVICES.query);
  return createQueryHandler({
    store: createStore(c),
    apiKeys: c.TALLY_API_KEYS,
    dimensions: c.TALLY_DIMENSIONS,
    shards: c.TALLY_SHARDS,
    logger,
    metrics: createMetrics(SERVICES.query, logger),
    cors: c.TALLY_CORS_ORIGINS.length ? originAllowList(c.TALLY_CORS_ORIGINS) : undefined,
  });
});
