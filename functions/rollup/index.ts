/** Lambda entry point: roll-up and outbox delivery (EventBridge schedule, every minute). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createRollupDeps } from '../../src/runtime/posthog';
import { lazy } from '../lazy';
import { createRollupHandler } from './handler';

export const handler = lazy(() => {
  const logger = createLogger(SERVICES.rollup);
  return createRollupHandler({
    ...createRollupDeps(loadAggregatorConfig()),
    logger,
    metrics: createMetrics(SERVICES.rollup, logger),
  });
});
