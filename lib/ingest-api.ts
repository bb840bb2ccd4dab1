/**
 * Ingest API: the HTTP API in front of the ingest function (tally's own route and PostHog-compatible
 * capture routes) and the query function, with stage throttling and JSON access logs.
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { TallyConfig } from './config';
import { FLAG_PROXY_TIMEOUT_MS, INGEST, MAX_MESSAGE_BYTES, QUERY, SAMPLING_POLL_SECONDS } from './sizing';
import { countingEnv } from './pipeline';
import { TABLE_READ_ACTIONS } from './storage';
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
  /**
   * The PostHog project key secret; ingest reads it only when sampling is on (`samplingSecretName`).
   * Unset: referenced by `config.posthogSecretName`.
   */
  readonly posthogSecret?: secretsmanager.ISecret;
  /** Entry overrides (tests only). */
  readonly entries?: { ingest?: string; query?: string };
}

export class IngestApi extends Construct {
  readonly api: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly ingest: TallyFunction;
  readonly query: TallyFunction;

  constructor(scope: Construct, id: string, props: IngestApiProps) {
    super(scope, id);
    const { config } = props;

    this.ingest = new TallyFunction(this, 'Ingest', {
      name: 'ingest',
      sizing: INGEST,
      config,
      description: 'tally: validates usage and PostHog capture requests and queues them',
      environment: {
        TALLY_QUEUE_URL: props.queue.queueUrl,
        TALLY_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
      },
      entry: props.entries?.ingest,
    });
    // sqs:SendMessage also covers SendMessageBatch; ingest needs nothing else from the queue.
    this.ingest.allow('SendToOwnQueue', ['sqs:SendMessage'], [props.queue.queueArn]);
    this.ingest.useSecret('TALLY_API_KEYS', props.apiKeysSecret);
    if (config.samplingSecretName) this.enableSampling(config, props.posthogSecret);

    this.query = new TallyFunction(this, 'Query', {
      name: 'query',
      sizing: QUERY,
      config,
      description: 'tally: answers usage queries from DynamoDB',
      environment: { TALLY_TABLE_NAME: props.table.tableName, ...countingEnv(config) },
      entry: props.entries?.query,
    });
    this.query.allow('ReadCounters', TABLE_READ_ACTIONS, [props.table.tableArn]);
    this.query.useSecret('TALLY_API_KEYS', props.apiKeysSecret);

    this.api = new apigw.HttpApi(this, 'Api', {
      apiName: `tally-${config.stage}`,
      description: `tally ${config.stage}: usage ingest and query`,
      // The stage below carries throttling and access logs, which the implicit default stage cannot.
      createDefaultStage: false,
    });

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });

    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      // Stage-wide limits below the account's 10,000 req/s: protect the account's other APIs and cap the
      // bill; a client over the limit gets 429 and retries.
      throttle: { rateLimit: config.throttleRate, burstLimit: config.throttleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    const integrations: Record<RouteFunction, HttpLambdaIntegration> = {
      ingest: new HttpLambdaIntegration('Ingest', this.ingest.fn),
      query: new HttpLambdaIntegration('Query', this.query.fn),
    };
    for (const [key, fn] of apiGatewayRoutes()) {
      const [method, path] = key.split(' ') as [apigw.HttpMethod, string];
      this.api.addRoutes({ path, methods: [method], integration: integrations[fn] });
    }

    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Routes authenticate in the function: tally API keys (Authorization: Bearer) and PostHog-compatible ' +
        'clients put the project token in the JSON body, which no API Gateway authorizer can read. /health is public.',
    });
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

  /** The API's base URL (ends in "/"). */
  get url(): string {
    return this.stage.url;
  }
}
