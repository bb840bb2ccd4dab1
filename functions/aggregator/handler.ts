/**
 * The aggregator Lambda (SQS event source with ReportBatchItemFailures): a thin wrapper over
 * {@link aggregateRecords}, bounded by the invocation's remaining time. It returns the messages to
 * retry; it throws for nothing short of a bug. Counting needs DynamoDB only: PostHog is the roll-up's.
 */
import middy from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { aggregateRecords, type AggregatorDeps, type LogFn, type RunReport } from '../../src/aggregate/aggregator';
import { METRICS, MetricUnit } from '../../src/observability';
import { invocationDeadline, withDeadline } from '../../src/util/deadline';

export interface AggregatorHandlerDeps extends AggregatorDeps {
  logger?: Logger;
  metrics?: Metrics;
  /** Called with each run's report (the local stack prints it; tests read it). */
  onReport?: (r: RunReport) => void;
  /** Time kept free before the invocation's timeout: every DynamoDB call ends before. */
  reserveMs?: number;
}

export const aggregatorHandlerDefaults = { reserveMs: 1000 };

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** A log function over a Powertools logger. */
export function logTo(logger: Logger | undefined): LogFn | undefined {
  return logger ? (level, msg, extra) => logger[level](msg, extra ?? {}) : undefined;
}

export function createAggregatorHandler(deps: AggregatorHandlerDeps): SqsHandler {
  const { metrics, logger } = deps;
  const d = { ...aggregatorHandlerDefaults, ...deps, log: deps.log ?? logTo(logger) };
  const handler = middy<SQSEvent, SQSBatchResponse>().handler(async (event, context) => {
    const report = await withDeadline(invocationDeadline(context, d.reserveMs), () => aggregateRecords(event.Records, d));
    deps.onReport?.(report);
    if (metrics) {
      metrics.addMetric(METRICS.MessagesCounted, MetricUnit.Count, report.counted);
      metrics.addMetric(METRICS.MessagesDuplicate, MetricUnit.Count, report.duplicates);
      metrics.addMetric(METRICS.MessagesFailed, MetricUnit.Count, report.failures.length);
      metrics.addMetric(METRICS.CallsCounted, MetricUnit.Count, report.calls);
      metrics.addMetric(METRICS.DeltasWritten, MetricUnit.Count, report.deltas);
    }
    logger?.info('batch done', { records: event.Records.length, ...report, failures: report.failures.length });
    return { batchItemFailures: report.failures.map((itemIdentifier) => ({ itemIdentifier })) };
  });
  if (logger) handler.use(injectLambdaContext(logger));
  if (metrics) handler.use(logMetrics(metrics));
  return handler as unknown as SqsHandler;
}
