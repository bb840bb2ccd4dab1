/**
 * Ingest API: the front door clients reach and the two functions behind it, ingest (tally's own route,
 * PostHog-compatible capture routes, the flag routes) and query. Two front doors, same routes and behaviour
 * (`frontDoor`, docs/DEPLOY.md compares them):
 *
 * - `http-api` (default): an API Gateway HTTP API with the routes of src/http/route-table.ts, stage
 *   throttling, JSON access logs when `accessLogs=on`.
 * - `function-url`: a Lambda Function URL on the ingest function, which then also serves the query routes
 *   (src/http/route-table.ts decides, in functions/ingest/index.ts); throttled only by
 *   `ingestReservedConcurrency`.
 *
 * In both, CORS preflights are answered by ingest (src/http/cors.ts): the allowed origins are each
 * project's, changed without a deploy, which a preflight configuration fixed at deploy time cannot follow.
 * Both functions read projects and keys from the table (src/projects/store.ts); their writes there are
 * limited by partition key (lib/storage.ts).
 */
import { Annotations, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { corsOriginsOf, type TallyConfig } from './config';
import { FLAG_PROXY_TIMEOUT_MS, INGEST, MAX_MESSAGE_BYTES, QUERY, SAMPLING_POLL_SECONDS } from './sizing';
import { countingEnv } from './pipeline';
import { INGEST_UPDATE_LEADING_KEYS, KEY_IMPORT_ACTIONS, KEY_IMPORT_LEADING_KEYS, KEY_TOUCH_ACTIONS, KEY_TOUCH_LEADING_KEYS, leadingKeys, TABLE_READ_ACTIONS } from './storage';
import { TallyFunction } from './tally-function';
import { apiGatewayRoutes, type RouteFunction } from '../src/http/route-table';

/**
 * API Gateway routes of one function, from the route table (src/http/route-table.ts): each path as `<path>`
 * and `<path>/{proxy+}`. An HTTP API route key may not end in "/" and `/batch/` does not match the route
 * `/batch`, but it does match `/batch/{proxy+}`. PostHog SDKs use the trailing-slash forms (posthog-node
 * posts to `/batch/`), so the functions see `rawPath` with or without the slash and treat both alike
 * (and answer 404 for anything deeper).
 */
export function routeKeysOf(fn: RouteFunction): string[] {
  return [...apiGatewayRoutes()].filter(([, f]) => f === fn).map(([key]) => key);
}

/** One JSON object per request; no query strings (a PostHog token can travel in one). */
export const ACCESS_LOG_FIELDS: Record<string, string> = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  method: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  protocol: '$context.protocol',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatencyMs: '$context.responseLatency',
  integrationLatencyMs: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
};

export interface IngestApiProps {
  readonly config: TallyConfig;
  readonly queue: sqs.IQueue;
  readonly table: dynamodb.ITable;
  readonly apiKeysSecret: secretsmanager.ISecret;
  /** Master secret client tokens are signed with (`TALLY_TOKEN_SECRET`), read by ingest only. */
  readonly tokenSecret: secretsmanager.ISecret;
  /**
   * The PostHog project key secret; ingest reads it only when sampling is on (`samplingSecretName`).
   * Unset: referenced by `config.posthogSecretName`.
   */
  readonly posthogSecret?: secretsmanager.ISecret;
  /** Entry overrides (tests only). */
  readonly entries?: { ingest?: string; query?: string };
}

/** What the monitoring watches of the front door, whichever it is. */
export interface FrontDoorMetrics {
  requests: cw.IMetric;
  clientErrors: cw.IMetric;
  serverErrors: cw.IMetric;
  latency(statistic: string): cw.IMetric;
  /** Time spent in the function, as the front door sees it (HTTP API only). */
  integrationLatency?(statistic: string): cw.IMetric;
}

export class IngestApi extends Construct {
  /** The HTTP API (`frontDoor=http-api`). */
  readonly api?: apigw.HttpApi;
  readonly stage?: apigw.HttpStage;
  /** Access logs (`accessLogs=on`). */
  readonly accessLogs?: logs.LogGroup;
  /** The ingest function's URL (`frontDoor=function-url`). */
  readonly functionUrl?: lambda.FunctionUrl;
  readonly ingest: TallyFunction;
  /** The query function (`frontDoor=http-api`; with a Function URL, ingest serves the query routes). */
  readonly query?: TallyFunction;
  /** Base URL of the front door (ends in "/"). */
  readonly url: string;
  readonly metrics: FrontDoorMetrics;

  constructor(scope: Construct, id: string, props: IngestApiProps) {
    super(scope, id);
    const { config } = props;
    const cors = corsOriginsOf(config);
    const functionUrl = config.frontDoor === 'function-url';

    this.ingest = new TallyFunction(this, 'Ingest', {
      name: 'ingest',
      sizing: INGEST,
      config,
      description: functionUrl
        ? 'tally: validates usage and PostHog capture requests and queues them; answers usage queries (Function URL front door)'
        : 'tally: validates usage and PostHog capture requests and queues them',
      environment: {
        TALLY_QUEUE_URL: props.queue.queueUrl,
        TALLY_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
        TALLY_TABLE_NAME: props.table.tableName,
        ...(cors.length ? { TALLY_CORS_ORIGINS: cors.join(',') } : {}),
        ...(functionUrl ? { TALLY_FRONT_DOOR: 'function-url' } : {}),
      },
      // Only with a quota that leaves 10 unreserved (lib/config.ts checks): the Function URL's throttle.
      reservedConcurrentExecutions: config.ingestReservedConcurrency,
      entry: props.entries?.ingest,
    });
    // sqs:SendMessage also covers SendMessageBatch; ingest needs nothing else from the queue.
    this.ingest.allow('SendToOwnQueue', ['sqs:SendMessage'], [props.queue.queueArn]);
    this.ingest.useSecret('TALLY_API_KEYS', props.apiKeysSecret);
    this.ingest.useSecret('TALLY_TOKEN_SECRET', props.tokenSecret);
    // Keys and projects (and, for quotas, a project's month total; behind a Function URL, every query).
    this.ingest.allow('ReadKeysAndCounters', TABLE_READ_ACTIONS, [props.table.tableArn]);
    this.ingest.allow('ImportConfiguredKeys', KEY_IMPORT_ACTIONS, [props.table.tableArn], leadingKeys(KEY_IMPORT_LEADING_KEYS));
    this.ingest.allow('LeaseRateTokensAndTouchKeys', ['dynamodb:UpdateItem'], [props.table.tableArn], leadingKeys(INGEST_UPDATE_LEADING_KEYS));
    if (config.samplingSecretName) this.enableSampling(config, props.posthogSecret);

    if (functionUrl) {
      // Public, like the HTTP API: the function authenticates every route but /health (tally keys,
      // PostHog project tokens in bodies). CORS is answered by the function (src/http/cors.ts), so the URL
      // configures none and no header is set twice.
      this.functionUrl = this.ingest.fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE, invokeMode: lambda.InvokeMode.BUFFERED });
      this.url = this.functionUrl.url;
      if (config.ingestReservedConcurrency === undefined) {
        Annotations.of(this).addWarningV2(
          'tally:UnthrottledFunctionUrl',
          'frontDoor=function-url without ingestReservedConcurrency: ingest is throttled only by the account concurrency quota (docs/DEPLOY.md, "Front door")',
        );
      }
      const fn = this.ingest.fn;
      const urlMetric = (metricName: string, statistic: string) => fn.metric(metricName, { statistic, period: Duration.minutes(5) });
      this.metrics = {
        requests: urlMetric('UrlRequestCount', 'Sum'),
        clientErrors: urlMetric('Url4xxCount', 'Sum'),
        serverErrors: urlMetric('Url5xxCount', 'Sum'),
        latency: (statistic) => urlMetric('UrlRequestLatency', statistic),
      };
      return;
    }

    const query = new TallyFunction(this, 'Query', {
      name: 'query',
      sizing: QUERY,
      config,
      description: 'tally: answers usage queries from DynamoDB',
      environment: { TALLY_TABLE_NAME: props.table.tableName, ...countingEnv(config), ...(cors.length ? { TALLY_CORS_ORIGINS: cors.join(',') } : {}) },
      entry: props.entries?.query,
    });
    query.allow('ReadKeysAndCounters', TABLE_READ_ACTIONS, [props.table.tableArn]);
    query.allow('ImportConfiguredKeys', KEY_IMPORT_ACTIONS, [props.table.tableArn], leadingKeys(KEY_IMPORT_LEADING_KEYS));
    query.allow('TouchKeys', KEY_TOUCH_ACTIONS, [props.table.tableArn], leadingKeys(KEY_TOUCH_LEADING_KEYS));
    query.useSecret('TALLY_API_KEYS', props.apiKeysSecret);
    this.query = query;

    const api = new apigw.HttpApi(this, 'Api', {
      apiName: `tally-${config.stage}`,
      description: `tally ${config.stage}: usage ingest and query`,
      // The stage below carries throttling and access logs, which the implicit default stage cannot.
      createDefaultStage: false,
      // No corsPreflight: it would fix the origins at deploy time and make API Gateway ignore the
      // functions' CORS headers. `OPTIONS /{proxy+}` (the route table) sends preflights to ingest instead.
    });
    this.api = api;

    if (config.accessLogs === 'on') {
      this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
        retention: config.logRetentionDays as logs.RetentionDays,
        removalPolicy: config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      });
    }

    this.stage = api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      // Stage-wide limits below the account's 10,000 req/s: protect the account's other APIs and cap the
      // bill; a client over the limit gets 429 and retries.
      throttle: { rateLimit: config.throttleRate, burstLimit: config.throttleBurst },
      ...(this.accessLogs
        ? { accessLogSettings: { destination: new apigw.LogGroupLogDestination(this.accessLogs), format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)) } }
        : {}),
    });
    if (!this.accessLogs) {
      Validations.of(this.stage).acknowledge({
        id: 'AwsSolutions-APIG1',
        reason:
          'Access logs are off by default: at one call per request they cost ~$0.22 per million requests and say what ' +
          "API Gateway's and the functions' metrics already say. Turn them on with -c accessLogs=on (docs/DEPLOY.md).",
      });
    }
    this.url = this.stage.url;

    const integrations: Record<RouteFunction, HttpLambdaIntegration> = {
      ingest: new HttpLambdaIntegration('Ingest', this.ingest.fn),
      query: new HttpLambdaIntegration('Query', query.fn),
    };
    for (const [key, fn] of apiGatewayRoutes()) {
      const [method, path] = key.split(' ') as [apigw.HttpMethod, string];
      api.addRoutes({ path, methods: [method], integration: integrations[fn] });
    }

    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Routes authenticate in the function: tally API keys (Authorization: Bearer) and PostHog-compatible ' +
        'clients put the project token in the JSON body, which no API Gateway authorizer can read. /health is public.',
    });
    this.metrics = {
      requests: api.metricCount({ period: Duration.minutes(5), statistic: 'Sum' }),
      clientErrors: api.metricClientError({ period: Duration.minutes(5), statistic: 'Sum' }),
      serverErrors: api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      latency: (statistic) => api.metricLatency({ period: Duration.minutes(5), statistic }),
      integrationLatency: (statistic) => api.metricIntegrationLatency({ period: Duration.minutes(5), statistic }),
    };
  }

  /**
   * Sampling (docs/SAMPLING.md): ingest evaluates the flag locally with the personal/secret key, sends
   * sampled events raw with the project key and forwards the flag routes. Both keys come from Secrets
   * Manager at cold start (`*_SECRET_ARN`); the template holds their names, never their values.
   */
  private enableSampling(config: TallyConfig, posthogSecret: secretsmanager.ISecret | undefined): void {
    const samplingSecret = secretsmanager.Secret.fromSecretNameV2(this, 'SamplingSecret', config.samplingSecretName!);
    const projectSecret = posthogSecret ?? secretsmanager.Secret.fromSecretNameV2(this, 'PosthogSecret', config.posthogSecretName);
    this.ingest.useSecret('POSTHOG_API_KEY', projectSecret);
    this.ingest.useSecret('POSTHOG_PERSONAL_API_KEY', samplingSecret);
    const env: Record<string, string> = {
      POSTHOG_HOST: config.posthogHost,
      TALLY_SAMPLING_FLAG_KEY: config.samplingFlagKey,
      TALLY_SAMPLING_TIMEOUT_MS: String(config.samplingTimeoutMs),
      TALLY_SAMPLING_POLL_SECONDS: String(SAMPLING_POLL_SECONDS),
      TALLY_FLAGS_PROXY_TIMEOUT_MS: String(FLAG_PROXY_TIMEOUT_MS),
    };
    if (config.samplingPersonProperties) env.TALLY_SAMPLING_PERSON_PROPERTIES = config.samplingPersonProperties;
    for (const [k, v] of Object.entries(env)) this.ingest.fn.addEnvironment(k, v);
  }
}
