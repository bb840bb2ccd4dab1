/** Lambda entry point: usage queries and health (API Gateway HTTP API, payload v2). */
import { loadQueryConfig } from '../../src/config';
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
  });
});
