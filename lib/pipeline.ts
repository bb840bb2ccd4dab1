/**
 * Pipeline: the SQS queue ingest writes to (with its dead-letter queue), the aggregator that counts it
 * into deltas in DynamoDB, and the roll-up that a schedule runs every minute to merge closed windows into
 * the counters and deliver their PostHog batch events.
 */
import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { TallyConfig } from './config';
import {
  AGGREGATOR,
  CLAIM_STALE_SECONDS,
  DEDUPE_TTL_DAYS,
  DLQ_RETENTION_DAYS,
  DYNAMODB_CONCURRENCY,
  MAX_MESSAGE_BYTES,
  MAX_RECEIVE_COUNT,
  ROLLUP,
  ROLLUP_SCHEDULE_MINUTES,
  POSTHOG_FETCH_RETRY_COUNT,
  POSTHOG_REQUEST_TIMEOUT_MS,
  QUEUE_RETENTION_DAYS,
  visibilityTimeoutSeconds,
} from './sizing';
import { AGGREGATOR_TABLE_ACTIONS, ROLLUP_TABLE_ACTIONS } from './storage';
import { TallyFunction } from './tally-function';

/** What the event source mapping needs on the queue, and all the aggregator may do with it. */
export const QUEUE_CONSUME_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'];

export interface PipelineProps {
  readonly config: TallyConfig;
  readonly table: dynamodb.ITable;
  readonly posthogSecret: secretsmanager.ISecret;
  /** Entry overrides (tests only). */
  readonly entries?: { aggregator?: string; rollup?: string };
}

export class Pipeline extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly aggregator: TallyFunction;
  readonly rollup: TallyFunction;
  readonly eventSource: lambda.EventSourceMapping;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: PipelineProps) {
    super(scope, id);
    const { config, table } = props;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      // Longest SQS allows: time to notice the alarm, fix the cause and redrive.
      retentionPeriod: Duration.days(DLQ_RETENTION_DAYS),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });

    this.queue = new sqs.Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(config.batchWindowSeconds)),
      // Four days (the SQS default): rides out a long aggregator or DynamoDB outage over a weekend.
      retentionPeriod: Duration.days(QUEUE_RETENTION_DAYS),
      maxMessageSizeBytes: MAX_MESSAGE_BYTES,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    const pipelineEnv: Record<string, string> = {
      TALLY_TABLE_NAME: table.tableName,
      ...countingEnv(config),
      TALLY_CLAIM_STALE_SECONDS: String(CLAIM_STALE_SECONDS),
      TALLY_MINUTE_TTL_DAYS: String(config.minuteTtlDays),
      TALLY_DEDUPE_TTL_DAYS: String(DEDUPE_TTL_DAYS),
      TALLY_DYNAMODB_CONCURRENCY: String(DYNAMODB_CONCURRENCY),
    };

    this.aggregator = new TallyFunction(this, 'Aggregator', {
      name: 'aggregator',
      sizing: AGGREGATOR,
      config,
      description: 'tally: counts queued usage into deltas in DynamoDB (claims, deltas, a commit marker per batch)',
      environment: pipelineEnv,
      entry: props.entries?.aggregator,
    });
    this.aggregator.allow('ConsumeOwnQueue', QUEUE_CONSUME_ACTIONS, [this.queue.queueArn]);
    // Counting needs DynamoDB only: no PostHog secret, so PostHog trouble can never stop it.
    this.aggregator.allow('WriteDeltas', AGGREGATOR_TABLE_ACTIONS, [table.tableArn]);

    this.eventSource = this.aggregator.fn.addEventSourceMapping('QueueSource', {
      eventSourceArn: this.queue.queueArn,
      // Large batches: one DynamoDB update per (key, window) covers many messages, so cost and hot-key
      // pressure fall as batches grow. Lambda caps the event at 6 MB whatever the count.
      batchSize: config.batchSize,
      // How long Lambda gathers messages before invoking: the latency traded for bigger batches.
      maxBatchingWindow: Duration.seconds(config.batchWindowSeconds),
      // A bad message is retried (and dead-lettered) alone instead of failing its whole batch.
      reportBatchItemFailures: true,
      // Caps DynamoDB write pressure and the share of the account's Lambda concurrency.
      maxConcurrency: config.maxConcurrency,
    });

    this.rollup = new TallyFunction(this, 'Rollup', {
      name: 'rollup',
      sizing: ROLLUP,
      config,
      description: 'tally: rolls closed windows up into the counters and delivers their PostHog batch events',
      environment: {
        ...pipelineEnv,
        POSTHOG_HOST: config.posthogHost,
        POSTHOG_REQUEST_TIMEOUT_MS: String(POSTHOG_REQUEST_TIMEOUT_MS),
        POSTHOG_FETCH_RETRY_COUNT: String(POSTHOG_FETCH_RETRY_COUNT),
      },
      // No reserved concurrency: each shard has a lease, so overlapping runs share the work, and a
      // reservation can fail the deploy on a new account (concurrency quota 10).
      entry: props.entries?.rollup,
    });
    this.rollup.allow('RollUp', ROLLUP_TABLE_ACTIONS, [table.tableArn]);
    this.rollup.useSecret('POSTHOG_API_KEY', props.posthogSecret);
    // The next tick is the retry: no async retries, and a tick older than one interval is dropped.
    this.rollup.fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(ROLLUP_SCHEDULE_MINUTES) });

    this.schedule = new events.Rule(this, 'RollupSchedule', {
      description: `tally ${config.stage}: roll up closed windows and deliver PostHog events every minute`,
      schedule: events.Schedule.rate(Duration.minutes(ROLLUP_SCHEDULE_MINUTES)),
      targets: [new targets.LambdaFunction(this.rollup.fn, { retryAttempts: 0 })],
    });
  }
}

/** The counting settings every function that counts or reads counts gets (src/config.ts `counting`). */
export function countingEnv(config: TallyConfig): Record<string, string> {
  return {
    TALLY_WINDOW_SECONDS: String(config.windowSeconds),
    TALLY_GRACE_SECONDS: String(config.graceSeconds),
    TALLY_SHARDS: String(config.shards),
    ...(config.dimensions ? { TALLY_DIMENSIONS: config.dimensions } : {}),
  };
}
