/**
 * Monitoring: CloudWatch alarms to an SNS topic (optionally e-mailed) and one dashboard with the four
 * golden signals (traffic, latency, errors, saturation) and tally's own metrics.
 *
 * tally's metrics come from the functions as EMF log lines (Powertools), namespace `Tally`, dimension
 * `service`; names are the constants of src/observability.ts so a rename cannot silently break an alarm.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, METRICS, SERVICES } from '../src/observability';
import type { TallyConfig } from './config';
import type { FrontDoorMetrics } from './ingest-api';
import type { TallyFunction } from './tally-function';

export interface MonitoringProps {
  readonly config: TallyConfig;
  /** The front door's requests, errors and latency (HTTP API, or the ingest function's URL). */
  readonly front: FrontDoorMetrics;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly table: dynamodb.ITable;
  readonly ingest: TallyFunction;
  /** Absent with the Function URL front door (ingest serves the query routes). */
  readonly query?: TallyFunction;
  readonly aggregator: TallyFunction;
  readonly rollup: TallyFunction;
}

type Service = (typeof SERVICES)[keyof typeof SERVICES];

/** A tally metric (namespace Tally, dimension service). */
export function tallyMetric(
  name: keyof typeof METRICS,
  service: Service,
  statistic: string,
  period: Duration = Duration.minutes(5),
  label?: string,
): cw.Metric {
  return new cw.Metric({
    namespace: METRIC_NAMESPACE,
    metricName: METRICS[name],
    dimensionsMap: { service },
    statistic,
    period,
    label: label ?? `${service} ${METRICS[name]}`,
  });
}

/** `RequestsRejected` of one error code (the `reason` dimension src/http/errors.ts adds), from ingest. */
export function rejectedMetric(reason: string, service: Service = SERVICES.ingest, statistic = 'Sum', period: Duration = Duration.minutes(5)): cw.Metric {
  return new cw.Metric({ namespace: METRIC_NAMESPACE, metricName: METRICS.RequestsRejected, dimensionsMap: { reason, service }, statistic, period, label: `${service} ${reason}` });
}

const FIVE_MIN = Duration.minutes(5);
const ONE_MIN = Duration.minutes(1);

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cw.Dashboard;
  readonly alarms: Record<string, cw.Alarm> = {};
  readonly dashboardName: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config, front, queue, deadLetterQueue: dlq, ingest, aggregator, rollup } = props;
    const prefix = `tally-${config.stage}`;
    this.dashboardName = prefix;

    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `tally ${config.stage} alarms`,
      enforceSSL: true,
    });
    // No server-side encryption on purpose: notifications carry only alarm names and metric values, and
    // CloudWatch can publish to an encrypted topic only through a customer managed KMS key ($1/month).
    if (config.alarmEmail) this.topic.addSubscription(new subs.EmailSubscription(config.alarmEmail));

    const action = new cwActions.SnsAction(this.topic);
    const alarm = (key: string, props: cw.AlarmProps): cw.Alarm => {
      const a = new cw.Alarm(this, key, { ...props, alarmName: `${prefix}-${props.alarmName}` });
      a.addAlarmAction(action);
      a.addOkAction(action);
      this.alarms[key] = a;
      return a;
    };

    // --- Pipeline health -------------------------------------------------------------------------------
    alarm('DlqNotEmpty', {
      alarmName: 'dlq-not-empty',
      alarmDescription:
        'Messages the aggregator failed 5 times are in the dead-letter queue: their usage is not counted yet. ' +
        'Fix the cause (aggregator logs), then redrive the DLQ to the queue (docs/DEPLOY.md).',
      metric: dlq.metricApproximateNumberOfMessagesVisible({ period: ONE_MIN, statistic: 'Maximum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('QueueOldestMessageAge', {
      alarmName: 'queue-oldest-message-age',
      alarmDescription: `The oldest queued message has waited over ${config.queueAgeAlarmSeconds} s for 3 minutes: the aggregator is failing, throttled or too slow (max concurrency ${config.maxConcurrency}).`,
      metric: queue.metricApproximateAgeOfOldestMessage({ period: ONE_MIN, statistic: 'Maximum' }),
      threshold: config.queueAgeAlarmSeconds,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('AggregatorErrors', {
      alarmName: 'aggregator-errors',
      alarmDescription: 'The aggregator failed whole invocations (crash, timeout or unhandled error); their batches are retried.',
      metric: aggregator.fn.metricErrors({ period: FIVE_MIN, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('AggregatorThrottles', {
      alarmName: 'aggregator-throttles',
      alarmDescription: 'Aggregator invocations were throttled: the account or Region is out of Lambda concurrency.',
      metric: aggregator.fn.metricThrottles({ period: FIVE_MIN, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    // --- Ingest and API ------------------------------------------------------------------------------
    alarm('IngestErrors', {
      alarmName: 'ingest-errors',
      alarmDescription: 'Ingest invocations failed (crash, timeout or unhandled error): clients got 5xx.',
      metric: ingest.fn.metricErrors({ period: FIVE_MIN, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('IngestThrottles', {
      alarmName: 'ingest-throttles',
      alarmDescription: 'Ingest invocations were throttled: clients got errors. Raise the Lambda concurrency quota (docs/DEPLOY.md).',
      metric: ingest.fn.metricThrottles({ period: FIVE_MIN, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('IngestP99Duration', {
      alarmName: 'ingest-p99-duration',
      alarmDescription: `Ingest p99 duration above ${config.ingestP99AlarmMs} ms for 15 minutes: slow SQS sends or CPU-starved requests.`,
      metric: ingest.fn.metricDuration({ period: FIVE_MIN, statistic: 'p99' }),
      threshold: config.ingestP99AlarmMs,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('Api5xxRate', {
      alarmName: 'api-5xx-rate',
      alarmDescription: `More than ${config.api5xxAlarmPercent}% of API requests answered 5xx in 2 of 3 five-minute periods.`,
      metric: new cw.MathExpression({
        expression: 'IF(requests > 0, 100 * errors / requests, 0)',
        usingMetrics: {
          errors: front.serverErrors,
          requests: front.requests,
        },
        period: FIVE_MIN,
        label: 'API 5xx %',
      }),
      threshold: config.api5xxAlarmPercent,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    // --- Projects and keys -----------------------------------------------------------------------------
    alarm('AuthUnavailable', {
      alarmName: 'auth-unavailable',
      alarmDescription:
        'Keys could not be checked (DynamoDB unreachable or slow) in 2 of 3 minutes: clients with keys not cached got 503 ' +
        'auth_unavailable (cached keys keep working for 10 minutes). Check DynamoDB and the functions\' logs.',
      metric: new cw.MathExpression({
        expression: 'ingest + query',
        usingMetrics: { ingest: tallyMetric('AuthUnavailable', SERVICES.ingest, 'Sum', ONE_MIN), query: tallyMetric('AuthUnavailable', SERVICES.query, 'Sum', ONE_MIN) },
        period: ONE_MIN,
        label: 'AuthUnavailable (ingest + query)',
      }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('QuotaExceeded', {
      alarmName: 'quota-exceeded',
      alarmDescription:
        'A project used up its monthly quota: its calls are refused (429 quota_exceeded) until the month ends or the quota ' +
        'is raised (npm run tally -- projects update <name> --quota N). The dashboard shows which answers were refused.',
      metric: rejectedMetric('quota_exceeded', SERVICES.ingest, 'Sum', FIVE_MIN),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    // --- Roll-up and PostHog delivery ----------------------------------------------------------------
    alarm('RollupErrors', {
      alarmName: 'rollup-errors',
      alarmDescription:
        'The scheduled roll-up failed in 2 of 3 minutes: counters are not being rolled up (queries stay exact, ' +
        'adding what is not rolled up yet) and PostHog events are not being sent. See the rollup logs.',
      metric: rollup.fn.metricErrors({ period: ONE_MIN, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('RollupBehind', {
      alarmName: 'rollup-behind',
      alarmDescription:
        'For 5 minutes, roll-up passes ran out of time with windows still due: the roll-up does not keep up. ' +
        'Raise TALLY_SHARDS (more parallel roll-ups) or the roll-up memory; see docs/PERFORMANCE.md.',
      metric: tallyMetric('ShardsBehind', SERVICES.rollup, 'Minimum', ONE_MIN),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 5,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('PosthogDeliveryFailures', {
      alarmName: 'posthog-delivery-failures',
      alarmDescription:
        'PostHog refused or did not answer batch events for 15 minutes. Events wait in the outbox and are ' +
        'resent (counting goes on); check POSTHOG_HOST, the project key secret and PostHog status.',
      metric: tallyMetric('BatchEventsFailed', SERVICES.rollup, 'Sum'),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('OutboxAge', {
      alarmName: 'outbox-age',
      alarmDescription:
        `The oldest PostHog event waiting in the outbox is over ${config.outboxAgeAlarmSeconds} s old for 3 minutes: ` +
        'batch events are delayed (PostHog down or refusing, or no PostHog key configured). See the rollup logs.',
      metric: tallyMetric('OutboxOldestAge', SERVICES.rollup, 'Maximum', ONE_MIN),
      threshold: config.outboxAgeAlarmSeconds,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('PosthogRejected', {
      alarmName: 'posthog-rejected',
      alarmDescription:
        'PostHog refused some batch or forwarded events (4xx). They are kept aside (pk X#<shard>) and block nothing; ' +
        'inspect them (docs/DEPLOY.md) and fix the cause.',
      metric: tallyMetric('PostHogEventsRejected', SERVICES.rollup, 'Sum'),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    this.dashboard = this.buildDashboard(props, prefix);
  }

  private buildDashboard(props: MonitoringProps, name: string): cw.Dashboard {
    const { config, front, queue, deadLetterQueue: dlq, table, ingest, query, aggregator, rollup } = props;
    const fns = [ingest, aggregator, ...(query ? [query] : []), rollup];
    const w = (title: string, left: cw.IMetric[], extra: Partial<cw.GraphWidgetProps> = {}) =>
      new cw.GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const accountConcurrency = new cw.Metric({
      namespace: 'AWS/Lambda',
      metricName: 'ConcurrentExecutions',
      statistic: 'Maximum',
      period: ONE_MIN,
      label: 'account (all functions)',
    });

    const d = new cw.Dashboard(this, 'Dashboard', { dashboardName: name, defaultInterval: Duration.hours(3) });
    d.addWidgets(
      new cw.TextWidget({
        markdown:
          `# tally ${config.stage}\n` +
          'Rows: **traffic**, **latency**, **errors**, **saturation**. Tally metrics: namespace `Tally`, dimension `service`. ' +
          'Runbook: docs/DEPLOY.md.',
        width: 24,
        height: 2,
      }),
    );
    // Traffic
    d.addWidgets(
      w('API requests', [front.requests]),
      // Ingest writes no metric per accepted request (EMF would cost a log line each); the queue's sent
      // count and the aggregator's counts say what was accepted.
      w('Calls counted', [
        tallyMetric('CallsCounted', SERVICES.aggregator, 'Sum'),
        tallyMetric('MessagesCounted', SERVICES.aggregator, 'Sum'),
        tallyMetric('DeltasWritten', SERVICES.aggregator, 'Sum'),
        tallyMetric('UnitsRolledUp', SERVICES.rollup, 'Sum'),
        tallyMetric('CallsRolledUp', SERVICES.rollup, 'Sum'),
        tallyMetric('CounterWrites', SERVICES.rollup, 'Sum'),
      ]),
      w('Queue in / out, PostHog sent', [
        queue.metricNumberOfMessagesSent({ period: FIVE_MIN, label: 'queue sent' }),
        queue.metricNumberOfMessagesDeleted({ period: FIVE_MIN, label: 'queue deleted' }),
        tallyMetric('BatchEventsSent', SERVICES.rollup, 'Sum'),
      ]),
    );
    // Latency
    d.addWidgets(
      w('API latency (ms)', [front.latency('p50'), front.latency('p99'), ...(front.integrationLatency ? [front.integrationLatency('p99')] : [])]),
      w(
        'Function duration p99 (ms)',
        fns.map((f) => f.fn.metricDuration({ statistic: 'p99', period: FIVE_MIN, label: `${f.name} p99` })),
        { leftAnnotations: [{ value: config.ingestP99AlarmMs, label: 'ingest p99 alarm' }] },
      ),
      w('Age of oldest queued message (s)', [queue.metricApproximateAgeOfOldestMessage({ period: ONE_MIN, statistic: 'Maximum' })], {
        leftAnnotations: [{ value: config.queueAgeAlarmSeconds, label: 'alarm' }],
      }),
    );
    // Errors
    d.addWidgets(
      w('API 4xx / 5xx', [front.clientErrors, front.serverErrors]),
      w('Rejected requests by reason', [
        new cw.MathExpression({
          expression: `SEARCH('{${METRIC_NAMESPACE},reason,service} MetricName="${METRICS.RequestsRejected}"', 'Sum', 300)`,
          usingMetrics: {},
          label: '',
          period: FIVE_MIN,
        }),
      ]),
      w('Function errors, failed messages, DLQ', [
        ...fns.map((f) => f.fn.metricErrors({ period: FIVE_MIN, statistic: 'Sum', label: `${f.name} errors` })),
        tallyMetric('QueueSendFailures', SERVICES.ingest, 'Sum'),
        tallyMetric('BodiesAlteredInTransit', SERVICES.ingest, 'Sum'),
        tallyMetric('AuthUnavailable', SERVICES.ingest, 'Sum'),
        tallyMetric('MessagesFailed', SERVICES.aggregator, 'Sum'),
        tallyMetric('MessagesDuplicate', SERVICES.aggregator, 'Sum'),
        tallyMetric('BatchesAborted', SERVICES.rollup, 'Sum'),
        tallyMetric('BatchEventsFailed', SERVICES.rollup, 'Sum'),
        tallyMetric('PostHogEventsRejected', SERVICES.rollup, 'Sum'),
        dlq.metricApproximateNumberOfMessagesVisible({ period: ONE_MIN, statistic: 'Maximum', label: 'DLQ messages' }),
      ]),
    );
    // Saturation
    d.addWidgets(
      w('Concurrent executions', [...fns.map((f) => f.fn.metric('ConcurrentExecutions', { statistic: 'Maximum', period: ONE_MIN, label: f.name })), accountConcurrency], {
        leftAnnotations: [
          { value: config.maxConcurrency, label: 'aggregator max concurrency' },
          { value: 1000, label: 'default account quota' },
        ],
      }),
      w('Throttles (Lambda, DynamoDB)', [
        ...fns.map((f) => f.fn.metricThrottles({ period: FIVE_MIN, statistic: 'Sum', label: `${f.name} throttles` })),
        table.metric('WriteThrottleEvents', { period: FIVE_MIN, statistic: 'Sum', label: 'DynamoDB write throttles' }),
        table.metric('ReadThrottleEvents', { period: FIVE_MIN, statistic: 'Sum', label: 'DynamoDB read throttles' }),
      ]),
      w('Backlog: queue, in flight, outbox', [
        queue.metricApproximateNumberOfMessagesVisible({ period: ONE_MIN, statistic: 'Maximum', label: 'queued' }),
        queue.metricApproximateNumberOfMessagesNotVisible({ period: ONE_MIN, statistic: 'Maximum', label: 'in flight' }),
        tallyMetric('OutboxBacklog', SERVICES.rollup, 'Maximum'),
        tallyMetric('OutboxOldestAge', SERVICES.rollup, 'Maximum'),
        tallyMetric('ShardsBehind', SERVICES.rollup, 'Maximum'),
      ]),
    );
    // Projects: what the per-project limits refused, and what could not be checked.
    d.addWidgets(
      w('Limits: rate-limited and over-quota answers (429)', [rejectedMetric('rate_limited'), rejectedMetric('quota_exceeded')]),
      w('Keys and tokens refused', [rejectedMetric('unauthorized'), rejectedMetric('token_expired'), rejectedMetric('forbidden'), rejectedMetric('unauthorized', SERVICES.query), rejectedMetric('forbidden', SERVICES.query)]),
      w('Keys or limits not checkable (DynamoDB)', [
        tallyMetric('AuthUnavailable', SERVICES.ingest, 'Sum'),
        tallyMetric('AuthUnavailable', SERVICES.query, 'Sum'),
        tallyMetric('LimitsUnavailable', SERVICES.ingest, 'Sum'),
      ]),
    );
    // Sampling (docs/SAMPLING.md): raw events sent, what failed, what waited.
    d.addWidgets(
      w('Sampled raw events', [
        tallyMetric('EventsSampled', SERVICES.ingest, 'Sum'),
        tallyMetric('SampleCaptureFailures', SERVICES.ingest, 'Sum'),
        tallyMetric('SamplingUnavailable', SERVICES.ingest, 'Sum'),
      ]),
      w('Sample capture latency', [tallyMetric('SampleCaptureLatency', SERVICES.ingest, 'p99', FIVE_MIN, 'raw capture p99')]),
      w('Flag routes failing', [tallyMetric('FlagProxyFailures', SERVICES.ingest, 'Sum')]),
    );
    d.addWidgets(
      w('DynamoDB consumed capacity', [
        table.metricConsumedWriteCapacityUnits({ period: FIVE_MIN, statistic: 'Sum', label: 'WCU' }),
        table.metricConsumedReadCapacityUnits({ period: FIVE_MIN, statistic: 'Sum', label: 'RCU' }),
      ]),
      new cw.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 16, height: 6 }),
    );
    return d;
  }

  /** Console URL of the dashboard. */
  dashboardUrl(): string {
    const region = Stack.of(this).region;
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboardName}`;
  }
}
