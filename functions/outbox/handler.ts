/**
 * The outbox Lambda (on a schedule): resends batch events PostHog did not take, finishes ledgers of
 * runs that stopped, and releases counter marks. Safe to run concurrently with the aggregator.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { drainOutbox, type AggregatorDeps, type DrainReport } from '../../src/aggregate/aggregator';
import { METRICS, MetricUnit } from '../../src/observability';
import { logTo } from '../aggregator/handler';

export interface OutboxHandlerDeps extends AggregatorDeps {
  logger?: Logger;
  metrics?: Metrics;
  /** Ledgers per page. */
  limit?: number;
}

/** Time kept free at the end of an invocation. */
const RESERVE_MS = 10_000;

export function createOutboxHandler(deps: OutboxHandlerDeps): (event?: unknown, context?: { getRemainingTimeInMillis?: () => number }) => Promise<DrainReport> {
  const core = { ...deps, log: deps.log ?? logTo(deps.logger) };
  return async (_event?: unknown, context?: { getRemainingTimeInMillis?: () => number }) => {
    const budgetMs = Math.max(0, (context?.getRemainingTimeInMillis?.() ?? 30_000) - RESERVE_MS);
    const r = await drainOutbox({ ...core, budgetMs });
    if (deps.metrics) {
      deps.metrics.addMetric(METRICS.BatchEventsSent, MetricUnit.Count, r.sent);
      deps.metrics.addMetric(METRICS.BatchEventsFailed, MetricUnit.Count, r.failed);
      deps.metrics.addMetric(METRICS.OutboxBacklog, MetricUnit.Count, r.backlog);
      deps.metrics.publishStoredMetrics();
    }
    if (r.seen > 0) deps.logger?.info('outbox drained', { ...r });
    return r;
  };
}
