/**
 * One tally Lambda function with the settings all four share: Node 22 on arm64, bundled locally by
 * esbuild (minified, tree-shaken, code-split, source maps: lib/bundling.ts), its own log group and its
 * own role that starts with no permission except writing to that log group. Every other permission is added by name, by the construct
 * that owns the resource.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, SERVICES } from '../src/observability';
import type { TallyConfig } from './config';
import type { FunctionSizing } from './sizing';
import { REPO_ROOT } from './build-options';
import { esbuildCode } from './bundling';

export { REPO_ROOT };

export type TallyFunctionName = keyof typeof SERVICES;

/** `functions/<name>/index.ts`, exporting `handler`. */
export function entryFor(name: TallyFunctionName): string {
  return path.join(REPO_ROOT, 'functions', name, 'index.ts');
}


export interface TallyFunctionProps {
  readonly name: TallyFunctionName;
  readonly sizing: FunctionSizing;
  readonly config: TallyConfig;
  readonly description: string;
  readonly environment?: Record<string, string>;
  /**
   * Caps concurrent executions (and reserves them from the account pool). Lambda refuses a reservation
   * that leaves fewer than 10 unreserved: only ingest may have one, validated in lib/config.ts.
   */
  readonly reservedConcurrentExecutions?: number;
  /** Override the entry file (tests only). */
  readonly entry?: string;
}

export class TallyFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly name: TallyFunctionName;

  constructor(scope: Construct, id: string, props: TallyFunctionProps) {
    super(scope, id);
    const { name, sizing, config } = props;
    this.name = name;
    const removalPolicy = config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    // No explicit name: a retained log group then never blocks a later deploy of the same stage.
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy,
    });

    // No managed policy (AWSLambdaBasicExecutionRole would allow logs:CreateLogGroup and writing to any
    // log group): the log group exists already, so the function only needs to write its own streams.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `tally ${config.stage} ${name}: least privilege, see lib/`,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.fn = new lambda.Function(this, 'Function', {
      functionName: `tally-${config.stage}-${name}`,
      description: props.description,
      // Local esbuild, ESM with code splitting, minified, source maps: lib/bundling.ts.
      code: esbuildCode(props.entry ?? entryFor(name)),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: sizing.memoryMb,
      timeout: Duration.seconds(sizing.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      // JSON log lines, and the platform's own lines only from WARN up: no START/END/REPORT (~350 bytes) per
      // invocation, a paid line per request on the ingest hot path (docs/DEPLOY.md, cost). Powertools writes
      // its JSON logs at the application level, and its EMF metrics straight to stdout with its own console,
      // which Lambda passes through as they are.
      loggingFormat: lambda.LoggingFormat.JSON,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      applicationLogLevelV2: lambda.ApplicationLogLevel[config.logLevel],
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICES[name],
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: config.logLevel,
        TALLY_AWS_CLIENT: config.awsClient,
        // Stack traces point at the TypeScript source through the bundled source map.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
    });
  }

  /**
   * Gives the function `<envName>_SECRET_ARN` and permission to read exactly that secret; src/secrets.ts
   * resolves it into `<envName>` at cold start. The value never appears in the template.
   */
  useSecret(envName: string, secret: secretsmanager.ISecret): void {
    this.fn.addEnvironment(`${envName}_SECRET_ARN`, secret.secretArn);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: `Read${envName.replace(/[^A-Za-z0-9]/g, '')}Secret`,
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secretArnForPolicy(secret)],
      }),
    );
  }

  /** Adds one named statement to the function's role (with `conditions`, e.g. DynamoDB leading keys). */
  allow(sid: string, actions: string[], resources: string[], conditions?: Record<string, Record<string, unknown>>): void {
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources, ...(conditions ? { conditions } : {}) }));
  }
}

/**
 * A secret referenced by name has a partial ARN (no random suffix); IAM needs `-??????` to match the
 * full ARN. A secret the stack creates has its full ARN.
 */
export function secretArnForPolicy(secret: secretsmanager.ISecret): string {
  if (secret.secretFullArn) return secret.secretFullArn;
  return `${secret.secretArn}-??????`;
}
