/** Lambda entry point: aggregator (SQS event source, ReportBatchItemFailures). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createAggregatorCore } from '../../src/runtime/posthog';
import { lazy } from '../lazy';
import { createAggregatorHandler } from './handler';

export const handler = lazy(() =>
  createAggregatorHandler({
    ...createAggregatorCore(loadAggregatorConfig()),
    logger: createLogger(SERVICES.aggregator),
    metrics: createMetrics(SERVICES.aggregator),
  }),
);
