/**
 * The tally stack: storage, pipeline, ingest API and monitoring, wired together.
 * Environment-agnostic (no account or Region in the template), so `cdk synth` needs no AWS access;
 * `cdk deploy` puts it in the account and Region of the credentials it runs with.
 */
import { CfnOutput, RemovalPolicy, Stack, type StackProps, Tags, Validations } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { TallyConfig } from './config';
import { IngestApi } from './ingest-api';
import { Monitoring } from './monitoring';
import { Pipeline } from './pipeline';
import { Storage } from './storage';
import type { TallyFunctionName } from './tally-function';

export interface TallyStackProps extends StackProps {
  readonly config: TallyConfig;
  /** Entry overrides per function (tests only; the app always uses functions/<name>/index.ts). */
  readonly entries?: Partial<Record<TallyFunctionName, string>>;
}

export class TallyStack extends Stack {
  readonly config: TallyConfig;
  readonly storage: Storage;
  readonly pipeline: Pipeline;
  readonly ingestApi: IngestApi;
  readonly monitoring: Monitoring;
  readonly apiKeysSecret: secretsmanager.ISecret;
  readonly tokenSecret: secretsmanager.Secret;
  readonly posthogSecret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: TallyStackProps) {
    super(scope, id, {
      description: `tally (${props.config.stage}): usage tracking - HTTP API, Lambda, SQS, DynamoDB, PostHog`,
      ...props,
    });
    const { config } = props;
    this.config = config;
    Tags.of(this).add('app', 'tally');
    Tags.of(this).add('stage', config.stage);

    // Client API keys: referenced by name when given, else generated here (value never in the template).
    if (config.apiKeysSecretName) {
      this.apiKeysSecret = secretsmanager.Secret.fromSecretNameV2(this, 'ApiKeysSecret', config.apiKeysSecretName);
    } else {
      const secret = new secretsmanager.Secret(this, 'ApiKeysSecret', {
        description: `tally ${config.stage}: client API keys, comma-separated (rotate by adding a key, then removing the old one)`,
        generateSecretString: { passwordLength: 40, excludePunctuation: true, includeSpace: false },
        removalPolicy: config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Client API keys are shared with API clients; automatic rotation would lock them out. Rotate by hand ' +
          'without downtime: append a new key, move clients over, remove the old key (docs/DEPLOY.md).',
      });
      this.apiKeysSecret = secret;
    }
    // Master secret of client tokens (src/projects/tokens.ts): generated here, read by ingest at cold start.
    this.tokenSecret = new secretsmanager.Secret(this, 'TokenSecret', {
      description: `tally ${config.stage}: master secret client tokens are signed with (each project's token secret derives from it)`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    Validations.of(this.tokenSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Client tokens live at most 15 minutes and are revoked per project (projects update --revoke-tokens); a new ' +
        'master secret would cut every token in flight and reaches warm instances only as they recycle. Rotate by hand ' +
        'if it leaked (docs/DEPLOY.md, "Client tokens").',
    });
    // PostHog project key: always created by the operator (docs/DEPLOY.md), referenced by name.
    this.posthogSecret = secretsmanager.Secret.fromSecretNameV2(this, 'PosthogSecret', config.posthogSecretName);

    this.storage = new Storage(this, 'Storage', { config });
    this.pipeline = new Pipeline(this, 'Pipeline', {
      config,
      table: this.storage.table,
      posthogSecret: this.posthogSecret,
      entries: props.entries,
    });
    this.ingestApi = new IngestApi(this, 'IngestApi', {
      config,
      queue: this.pipeline.queue,
      table: this.storage.table,
      apiKeysSecret: this.apiKeysSecret,
      tokenSecret: this.tokenSecret,
      entries: props.entries,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      front: this.ingestApi.metrics,
      queue: this.pipeline.queue,
      deadLetterQueue: this.pipeline.deadLetterQueue,
      table: this.storage.table,
      ingest: this.ingestApi.ingest,
      query: this.ingestApi.query,
      aggregator: this.pipeline.aggregator,
      rollup: this.pipeline.rollup,
    });

    // Node 22 is the runtime tally is built and tested on (package.json engines, the local stack, CI).
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is deliberate: it is the version tally is developed, tested and bundled for (esbuild target ' +
        'node22) and is supported by Lambda until 2027. Move to a newer runtime together with the toolchain.',
    });

    new CfnOutput(this, 'ApiUrl', { value: this.ingestApi.url, description: 'Base URL of the HTTP API (ends in /)' });
    new CfnOutput(this, 'ApiKeysSecretArn', {
      value: this.apiKeysSecret.secretArn,
      description: 'Secret holding the configured client API keys (keys of project default): aws secretsmanager get-secret-value --secret-id <this>',
    });
    new CfnOutput(this, 'TokenSecretArn', {
      value: this.tokenSecret.secretArn,
      description: 'Secret holding the master secret of client tokens (generated; never shared with clients)',
    });
    new CfnOutput(this, 'PosthogSecretName', { value: config.posthogSecretName, description: 'Secret the PostHog project key is read from' });
    new CfnOutput(this, 'QueueUrl', { value: this.pipeline.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.pipeline.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn, description: 'Subscribe more endpoints here' });
    new CfnOutput(this, 'DashboardUrl', { value: this.monitoring.dashboardUrl() });
  }
}
