/**
 * The aggregator Lambda (SQS event source with ReportBatchItemFailures): a thin wrapper over
 * {@link aggregateRecords}. It returns the messages to retry; it throws for nothing short of a bug.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { aggregateRecords, drainOutbox, type AggregatorDeps, type RunReport } from '../../src/aggregate/aggregator';
import { METRICS, MetricUnit } from '../../src/observability';

export interface AggregatorHandlerDeps extends AggregatorDeps {
  logger?: Logger;
  metrics?: Metrics;
  /** Called with each run's report (the local stack prints it; tests read it). */
  onReport?: (r: RunReport) => void;
  /**
   * Outbox ledgers each run that counted something also finishes (oldest first), so the outbox keeps
   * up with traffic between scheduled drains. 0 turns it off.
   */
  outboxShare?: number;
}

export const aggregatorHandlerDefaults = { outboxShare: 20 };

export type SqsHandler = (event: SQSEvent, context?: unknown) => Promise<SQSBatchResponse>;

export function logTo(logger: Logger | undefined): AggregatorDeps['log'] {
  return logger ? (level, msg, extra) => logger[level](msg, extra ?? {}) : undefined;
}

export function createAggregatorHandler(deps: AggregatorHandlerDeps): SqsHandler {
  const { metrics, logger } = deps;
  const core: AggregatorDeps = { ...deps, log: deps.log ?? logTo(logger) };
  return async (event) => {
    const report = await aggregateRecords(event.Records, core);
    const share = deps.outboxShare ?? aggregatorHandlerDefaults.outboxShare;
    if (share > 0 && report.counted > 0) {
      // Best effort: the scheduled outbox job does the same; a failure here never fails the batch.
      const d = await drainOutbox({ ...core, limit: share }).catch((err: unknown) => {
        logger?.warn('outbox share failed', { error: String(err) });
        return undefined;
      });
      if (d) {
        report.sent += d.sent;
        report.sendFailed += d.failed;
      }
    }
    deps.onReport?.(report);
    if (metrics) {
      metrics.addMetric(METRICS.MessagesCounted, MetricUnit.Count, report.counted);
      metrics.addMetric(METRICS.MessagesDuplicate, MetricUnit.Count, report.duplicates);
      metrics.addMetric(METRICS.MessagesFailed, MetricUnit.Count, report.failures.length);
      metrics.addMetric(METRICS.CallsCounted, MetricUnit.Count, report.calls);
      metrics.addMetric(METRICS.AggregatedKeys, MetricUnit.Count, report.keys);
      metrics.addMetric(METRICS.BatchEventsSent, MetricUnit.Count, report.sent);
      metrics.addMetric(METRICS.BatchEventsFailed, MetricUnit.Count, report.sendFailed);
      metrics.publishStoredMetrics();
    }
    logger?.info('batch done', { records: event.Records.length, ...report, failures: report.failures.length });
    return { batchItemFailures: report.failures.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}
