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
  /** ingest: events durably queued. */
  EventsAccepted: 'EventsAccepted',
  /** ingest: requests answered 4xx, with dimension `reason` (invalid_request, unauthorized, payload_too_large, not_found). */
  RequestsRejected: 'RequestsRejected',
  /** ingest: milliseconds spent in SQS sends per request. */
  QueueSendLatency: 'QueueSendLatency',
  /** ingest: requests answered 503 because the queue refused or was unreachable. */
  QueueSendFailures: 'QueueSendFailures',
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

/** Metrics for one function; flushed by the handler after each invocation. */
export function createMetrics(service: string): Metrics {
  return new Metrics({ namespace: METRIC_NAMESPACE, serviceName: service });
}
