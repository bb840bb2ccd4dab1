/**
 * Pipeline: the SQS queue ingest writes to (with its dead-letter queue), the aggregator that drains it
 * into DynamoDB and PostHog, and the outbox that a schedule runs to resend PostHog batch events that
 * could not be delivered while traffic was flowing.
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
  OUTBOX,
  POSTHOG_FETCH_RETRY_COUNT,
  POSTHOG_REQUEST_TIMEOUT_MS,
  QUEUE_RETENTION_DAYS,
  visibilityTimeoutSeconds,
} from './sizing';
import { TABLE_WRITE_ACTIONS } from './storage';
import { TallyFunction } from './tally-function';

/** What the event source mapping needs on the queue, and all the aggregator may do with it. */
export const QUEUE_CONSUME_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'];

export interface PipelineProps {
  readonly config: TallyConfig;
  readonly table: dynamodb.ITable;
  readonly posthogSecret: secretsmanager.ISecret;
  /** Entry overrides (tests only). */
  readonly entries?: { aggregator?: string; outbox?: string };
}

export class Pipeline extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly aggregator: TallyFunction;
  readonly outbox: TallyFunction;
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

    const pipelineEnv = {
      TALLY_TABLE_NAME: table.tableName,
      POSTHOG_HOST: config.posthogHost,
      POSTHOG_REQUEST_TIMEOUT_MS: String(POSTHOG_REQUEST_TIMEOUT_MS),
      POSTHOG_FETCH_RETRY_COUNT: String(POSTHOG_FETCH_RETRY_COUNT),
      TALLY_CLAIM_STALE_SECONDS: String(CLAIM_STALE_SECONDS),
      TALLY_MINUTE_TTL_DAYS: String(config.minuteTtlDays),
      TALLY_DEDUPE_TTL_DAYS: String(DEDUPE_TTL_DAYS),
      TALLY_DYNAMODB_CONCURRENCY: String(DYNAMODB_CONCURRENCY),
    };

    this.aggregator = new TallyFunction(this, 'Aggregator', {
      name: 'aggregator',
      sizing: AGGREGATOR,
      config,
      description: 'tally: counts queued usage into DynamoDB and sends aggregated batch events to PostHog',
      environment: pipelineEnv,
      entry: props.entries?.aggregator,
    });
    this.aggregator.allow('ConsumeOwnQueue', QUEUE_CONSUME_ACTIONS, [this.queue.queueArn]);
    this.aggregator.allow('UpdateCounters', TABLE_WRITE_ACTIONS, [table.tableArn]);
    this.aggregator.useSecret('POSTHOG_API_KEY', props.posthogSecret);

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

    this.outbox = new TallyFunction(this, 'Outbox', {
      name: 'outbox',
      sizing: OUTBOX,
      config,
      description: 'tally: resends unsent PostHog batch events and recovers stale work on a schedule',
      environment: pipelineEnv,
      // No reserved concurrency: on a new account (concurrency quota 10) any reservation fails the deploy
      // ("decreases account's UnreservedConcurrentExecution below its minimum value of [10]"). A run takes
      // at most its 60 s timeout and the schedule ticks every few minutes, so runs rarely overlap, and an
      // overlap only contends for the same claims.
      entry: props.entries?.outbox,
    });
    this.outbox.allow('DrainOutbox', TABLE_WRITE_ACTIONS, [table.tableArn]);
    this.outbox.useSecret('POSTHOG_API_KEY', props.posthogSecret);
    // The next tick is the retry: no async retries, and a tick older than one interval is dropped.
    this.outbox.fn.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: Duration.minutes(Math.max(1, config.outboxScheduleMinutes)),
    });

    this.schedule = new events.Rule(this, 'OutboxSchedule', {
      description: `tally ${config.stage}: run the outbox every ${config.outboxScheduleMinutes} min`,
      schedule: events.Schedule.rate(Duration.minutes(config.outboxScheduleMinutes)),
      targets: [new targets.LambdaFunction(this.outbox.fn, { retryAttempts: 0 })],
    });
  }
}
