/**
 * Structured logs and CloudWatch metrics (EMF) through Powertools for AWS Lambda.
 * Metric names are constants here because the CDK alarms and dashboard (lib/) refer to them.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** CloudWatch namespace of every tally metric. Each function adds the dimension `service`. */
export const METRIC_NAMESPACE = 'Tally';

/** The `service` dimension value of each function. */
export const SERVICES = { ingest: 'ingest', aggregator: 'aggregator', query: 'query', rollup: 'rollup' } as const;

/** Sampling and flag routes (docs/SAMPLING.md), all emitted by ingest; part of {@link METRICS}. */
export const SAMPLING_METRICS = {
  /** ingest: sampled events PostHog took as raw events. */
  EventsSampled: 'EventsSampled',
  /** ingest: sampled events whose raw capture failed or timed out (the request was answered regardless). */
  SampleCaptureFailures: 'SampleCaptureFailures',
  /** ingest: milliseconds the request waited for the raw capture. */
  SampleCaptureLatency: 'SampleCaptureLatency',
  /** ingest: counted events not evaluated because no flag definitions were loaded (nothing sampled, no remote call). */
  SamplingUnavailable: 'SamplingUnavailable',
  /** ingest: flag-route requests PostHog did not answer (502/504) or that had no PostHog to go to (503). */
  FlagProxyFailures: 'FlagProxyFailures',
} as const;

export const METRICS = {
  /**
   * ingest, query: requests answered 4xx, with dimension `reason` (the error code: invalid_request,
   * unauthorized, token_expired, forbidden, rate_limited, quota_exceeded, payload_too_large, not_found).
   */
  RequestsRejected: 'RequestsRejected',
  /** ingest: requests answered 503 because the queue refused, was unreachable, or the invocation ran out of time. */
  QueueSendFailures: 'QueueSendFailures',
  /**
   * ingest: gzip bodies API Gateway delivered as text and that lost bytes on the way (answered 400
   * `body_altered_in_transit`, naming the client setting to change; docs/DEPLOY.md).
   */
  BodiesAlteredInTransit: 'BodiesAlteredInTransit',
  /** ingest, query: requests answered 503 because the key store could not be reached for a key not cached. */
  AuthUnavailable: 'AuthUnavailable',
  /**
   * ingest: requests admitted without their project's rate limit or quota checked, because DynamoDB did
   * not answer in time (src/projects/limits.ts: limits never make ingestion lag or drop events).
   */
  LimitsUnavailable: 'LimitsUnavailable',
  /** aggregator: SQS messages counted for the first time. */
  MessagesCounted: 'MessagesCounted',
  /** aggregator: redelivered messages recognised as already counted. */
  MessagesDuplicate: 'MessagesDuplicate',
  /** aggregator: messages reported as batch item failures (retried, then dead-lettered). */
  MessagesFailed: 'MessagesFailed',
  /** aggregator: calls added to the counters. */
  CallsCounted: 'CallsCounted',
  /** aggregator: delta items written (one per shard and window a run touched). */
  DeltasWritten: 'DeltasWritten',
  /** rollup: roll-up units applied (normally one per shard and window). */
  UnitsRolledUp: 'UnitsRolledUp',
  /** rollup: calls added to the counters. */
  CallsRolledUp: 'CallsRolledUp',
  /** rollup: counter items updated (DynamoDB writes). */
  CounterWrites: 'CounterWrites',
  /** rollup: batches found uncommitted after their window closed, and aborted (runs that died or overran). */
  BatchesAborted: 'BatchesAborted',
  /** rollup: events delivered to PostHog. */
  BatchEventsSent: 'BatchEventsSent',
  /** rollup: events whose delivery to PostHog failed (kept in the outbox, retried). */
  BatchEventsFailed: 'BatchEventsFailed',
  /** rollup: events PostHog refused (4xx), kept aside; each blocks nothing. */
  PostHogEventsRejected: 'PostHogEventsRejected',
  /** rollup: outbox entries still waiting after a pass (of those looked at). */
  OutboxBacklog: 'OutboxBacklog',
  /** rollup: age of the oldest outbox entry still waiting, seconds. */
  OutboxOldestAge: 'OutboxOldestAge',
  /** rollup: shards that still had a due window when the pass ran out of time. */
  ShardsBehind: 'ShardsBehind',
  ...SAMPLING_METRICS,
} as const;


export { MetricUnit };

/** A logger for one function. Log level from POWERTOOLS_LOG_LEVEL (default INFO). */
export function createLogger(service: string): Logger {
  return new Logger({ serviceName: service });
}

/**
 * Metrics for one function, flushed after each invocation by Powertools' `logMetrics` middleware (or
 * the handler). An invocation that added no metric writes nothing: Powertools would log a warning
 * ("No application metrics to publish") on every such invocation, a paid log line per request on the
 * ingest hot path, which adds metrics only for rejections, failures and sampling.
 */
export function createMetrics(service: string, logger: Pick<Logger, 'warn' | 'error' | 'info' | 'debug'> = console): Metrics {
  const quiet = {
    trace: () => undefined,
    debug: (...a: unknown[]) => logger.debug(...(a as [string])),
    info: (...a: unknown[]) => logger.info(...(a as [string])),
    error: (...a: unknown[]) => logger.error(...(a as [string])),
    warn: (message: unknown, ...rest: unknown[]) => {
      if (typeof message === 'string' && message.startsWith(NO_METRICS_WARNING)) return;
      logger.warn(...([message, ...rest] as [string]));
    },
  };
  return new Metrics({ namespace: METRIC_NAMESPACE, serviceName: service, logger: quiet });
}

/** The start of the warning Powertools logs when an invocation published no metric. */
const NO_METRICS_WARNING = 'No application metrics to publish';
