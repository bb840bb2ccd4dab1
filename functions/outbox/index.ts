/** Lambda entry point: outbox drain (EventBridge schedule). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createAggregatorCore } from '../../src/runtime/posthog';
import { lazy } from '../lazy';
import { createOutboxHandler } from './handler';

export const handler = lazy(() =>
  createOutboxHandler({
    ...createAggregatorCore(loadAggregatorConfig()),
    logger: createLogger(SERVICES.outbox),
    metrics: createMetrics(SERVICES.outbox),
  }),
);
