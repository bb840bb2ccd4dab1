/** Lambda entry point: aggregator (SQS event source, ReportBatchItemFailures). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createAggregatorDeps } from '../../src/runtime/store';
import { lazy } from '../lazy';
import { createAggregatorHandler } from './handler';

export const handler = lazy(() => {
  const logger = createLogger(SERVICES.aggregator);
  return createAggregatorHandler({
    ...createAggregatorDeps(loadAggregatorConfig()),
    logger,
    metrics: createMetrics(SERVICES.aggregator, logger),
  });
});
