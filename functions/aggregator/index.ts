/** Lambda entry point: aggregator (SQS event source, ReportBatchItemFailures). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createAggregatorDeps } from '../../src/runtime/store';
import { lazy } from '../lazy';
import { createAggregatorHandler } from './handler';

export const handler = lazy(() =>
  createAggregatorHandler({
    ...createAggregatorDeps(loadAggregatorConfig()),
    logger: createLogger(SERVICES.aggregator),
    metrics: createMetrics(SERVICES.aggregator),
  }),
);
