/**
 * The roll-up Lambda (every minute, on a schedule): rolls up every closed window of every shard into
 * the counters, then delivers the outbox to PostHog (src/rollup/). Bounded by the invocation's
 * remaining time; overlapping invocations take different shards (each shard has a lease).
 */
import middy from '@middy/core';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { METRICS, MetricUnit } from '../../src/observability';
import { runRollup, type RollupDeps, type RollupReport } from '../../src/rollup/rollup';
import { invocationDeadline, withDeadline } from '../../src/util/deadline';
import { logTo } from '../aggregator/handler';

export interface RollupHandlerDeps extends RollupDeps {
  logger?: Logger;
  metrics?: Metrics;
  /** Time kept free before the invocation's timeout. */
  reserveMs?: number;
  onReport?: (r: RollupReport) => void;
}

export type RollupHandler = (event: unknown, context: Context) => Promise<RollupReport>;

export function createRollupHandler(deps: RollupHandlerDeps): RollupHandler {
  const { metrics, logger } = deps;
  const core = { ...deps, log: deps.log ?? logTo(logger) };
  const handler = middy<unknown, RollupReport>().handler(async (_event, context) => {
    const r = await withDeadline(invocationDeadline(context, deps.reserveMs ?? 2000), () => runRollup(core));
    deps.onReport?.(r);
    if (metrics) {
      metrics.addMetric(METRICS.UnitsRolledUp, MetricUnit.Count, r.units);
      metrics.addMetric(METRICS.CallsRolledUp, MetricUnit.Count, r.calls);
      metrics.addMetric(METRICS.CounterWrites, MetricUnit.Count, r.counterWrites);
      metrics.addMetric(METRICS.BatchesAborted, MetricUnit.Count, r.aborted);
      metrics.addMetric(METRICS.BatchEventsSent, MetricUnit.Count, r.sent);
      metrics.addMetric(METRICS.BatchEventsFailed, MetricUnit.Count, r.failed);
      metrics.addMetric(METRICS.PostHogEventsRejected, MetricUnit.Count, r.rejected);
      metrics.addMetric(METRICS.OutboxBacklog, MetricUnit.Count, r.backlog);
      metrics.addMetric(METRICS.OutboxOldestAge, MetricUnit.Seconds, Math.round(r.oldestMs / 1000));
      metrics.addMetric(METRICS.ShardsBehind, MetricUnit.Count, r.behind);
    }
    if (r.units + r.sent + r.failed + r.rejected > 0) logger?.info('roll-up done', { ...r });
    return r;
  });
  if (logger) handler.use(injectLambdaContext(logger));
  if (metrics) handler.use(logMetrics(metrics));
  return handler as unknown as RollupHandler;
}
