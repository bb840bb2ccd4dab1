/**
 * Assertions on the synthesized CloudFormation template: resources, IAM least privilege, alarms and
 * event source settings. Bundling is skipped here (see support.ts); bundle.test.ts covers it.
 */
import { METRIC_NAMESPACE, METRICS } from '../../src/observability';
import { ACCESS_LOG_FIELDS, routeKeysOf } from '../../lib/ingest-api';
import { apiGatewayRoutes, ROUTES } from '../../src/http/route-table';
import {
  AGGREGATOR,
  CLAIM_STALE_SECONDS,
  DEDUPE_TTL_DAYS,
  INGEST,
  ROLLUP,
  POSTHOG_FETCH_RETRY_COUNT,
  POSTHOG_REQUEST_TIMEOUT_MS,
  POSTHOG_RETRY_DELAY_MS,
  QUERY,
} from '../../lib/sizing';
import {
  allStatements,
  asArray,
  type CfnResource,
  fn,
  functionId,
  grants,
  refId,
  resourcesOfType,
  type Synth,
  synth,
  type TemplateJson,
} from './support';

const DAY = 86_400;
let base: Synth;
let json: TemplateJson;

beforeAll(() => {
  base = synth();
  json = base.json;
});

const only = (type: string): [string, CfnResource] => {
  const all = resourcesOfType(json, type);
  expect(all).toHaveLength(1);
  return all[0];
};
const queues = () => {
  const all = resourcesOfType(json, 'AWS::SQS::Queue');
  expect(all).toHaveLength(2);
  const main = all.find(([, q]) => q.Properties!.RedrivePolicy)!;
  const dlq = all.find(([, q]) => !q.Properties!.RedrivePolicy)!;
  return { main, dlq };
};
const tableId = () => only('AWS::DynamoDB::Table')[0];
/** The logical id of a generated secret (`ApiKeysSecret`, `TokenSecret`). */
const secretId = (name: string, j: TemplateJson = json) => {
  const hit = resourcesOfType(j, 'AWS::SecretsManager::Secret').filter(([id]) => id.startsWith(name));
  expect(hit).toHaveLength(1);
  return hit[0]![0];
};
const apiKeysSecret = () => secretId('ApiKeysSecret');
const tokenSecret = () => secretId('TokenSecret');
const roleOf = (name: string) => refId(fn(json, name).Role)!;

describe('Lambda functions', () => {
  const sizing = { ingest: INGEST, aggregator: AGGREGATOR, query: QUERY, rollup: ROLLUP };

  it('are exactly the four tally functions, nothing else (no custom-resource helpers)', () => {
    const names = resourcesOfType(json, 'AWS::Lambda::Function').map(([, f]) => f.Properties!.FunctionName).sort();
    expect(names).toEqual(['tally-dev-aggregator', 'tally-dev-ingest', 'tally-dev-query', 'tally-dev-rollup']);
  });

  it.each(Object.entries(sizing))('%s: Node 22 on arm64, memory and timeout as chosen in lib/sizing.ts', (name, s) => {
    const f = fn(json, name);
    expect(f.Runtime).toBe('nodejs22.x');
    expect(f.Architectures).toEqual(['arm64']);
    expect(f.Handler).toBe('index.handler');
    expect(f.MemorySize).toBe(s.memoryMb);
    expect(f.Timeout).toBe(s.timeoutSeconds);
    expect(s.why.length).toBeGreaterThan(80);
  });

  it.each(Object.keys(sizing))('%s: Powertools settings, source maps, own log group with retention', (name) => {
    const f = fn(json, name);
    expect(f.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: name,
      POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
    const logGroup = json.Resources[refId(f.LoggingConfig.LogGroup)!];
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties!.RetentionInDays).toBe(30);
    // Each function has its own log group.
    const others = Object.keys(sizing).filter((n) => n !== name).map((n) => refId(fn(json, n).LoggingConfig.LogGroup));
    expect(others).not.toContain(refId(f.LoggingConfig.LogGroup));
  });

  it('get the environment variables src/config.ts reads, and secrets only as *_SECRET_ARN', () => {
    const env = (name: string) => fn(json, name).Environment.Variables as Record<string, unknown>;
    const { main } = queues();
    expect(refId(env('ingest').TALLY_QUEUE_URL)).toBe(main[0]);
    expect(env('ingest').TALLY_MAX_MESSAGE_BYTES).toBe(String(1024 * 1024));
    expect(env('ingest').TALLY_API_KEYS_SECRET_ARN).toBeDefined();
    expect(env('ingest').TALLY_TOKEN_SECRET_SECRET_ARN).toBeDefined();
    expect(refId(env('ingest').TALLY_TABLE_NAME)).toBe(tableId()); // keys and projects
    expect(refId(env('query').TALLY_TABLE_NAME)).toBe(tableId());
    expect(env('query').TALLY_API_KEYS_SECRET_ARN).toBeDefined();
    const counting = { TALLY_WINDOW_SECONDS: '60', TALLY_GRACE_SECONDS: '60', TALLY_SHARDS: '8' };
    for (const name of ['aggregator', 'rollup']) {
      expect(env(name)).toMatchObject({
        ...counting,
        TALLY_CLAIM_STALE_SECONDS: String(CLAIM_STALE_SECONDS),
        TALLY_MINUTE_TTL_DAYS: '14',
        TALLY_DEDUPE_TTL_DAYS: String(DEDUPE_TTL_DAYS),
        TALLY_DYNAMODB_CONCURRENCY: '32',
      });
      expect(refId(env(name).TALLY_TABLE_NAME)).toBe(tableId());
    }
    expect(env('query')).toMatchObject(counting);
    // Only the roll-up talks to PostHog: counting never depends on its secret.
    expect(env('rollup')).toMatchObject({
      POSTHOG_HOST: 'https://us.i.posthog.com',
      POSTHOG_REQUEST_TIMEOUT_MS: String(POSTHOG_REQUEST_TIMEOUT_MS),
      POSTHOG_FETCH_RETRY_COUNT: String(POSTHOG_FETCH_RETRY_COUNT),
    });
    expect(JSON.stringify(env('rollup').POSTHOG_API_KEY_SECRET_ARN)).toContain(':secret:tally/dev/posthog-api-key');
    expect(env('aggregator')).not.toHaveProperty('POSTHOG_API_KEY_SECRET_ARN');
    expect(env('aggregator')).not.toHaveProperty('POSTHOG_HOST');
    for (const name of ['ingest', 'aggregator', 'query', 'rollup']) {
      expect(env(name)).not.toHaveProperty('TALLY_API_KEYS');
      expect(env(name)).not.toHaveProperty('POSTHOG_API_KEY');
    }
    // Only the functions that need a secret get it.
    expect(env('ingest')).not.toHaveProperty('POSTHOG_API_KEY_SECRET_ARN');
    expect(env('aggregator')).not.toHaveProperty('TALLY_API_KEYS_SECRET_ARN');
  });

  it('no function reserves concurrency: a reservation fails the deploy on a new account (quota 10)', () => {
    for (const [, f] of resourcesOfType(json, 'AWS::Lambda::Function')) expect(f.Properties!.ReservedConcurrentExecutions).toBeUndefined();
    for (const [, f] of resourcesOfType(synth({ frontDoor: 'function-url' }).json, 'AWS::Lambda::Function')) expect(f.Properties!.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('an ingest reservation is refused unless the stated quota leaves 10 unreserved', () => {
    expect(() => synth({ frontDoor: 'function-url', ingestReservedConcurrency: 5 })).toThrow(/leave 5 of the account's 10 unreserved/);
    const s = synth({ frontDoor: 'function-url', ingestReservedConcurrency: 200, lambdaConcurrencyQuota: 1000 });
    expect(fn(s.json, 'ingest').ReservedConcurrentExecutions).toBe(200);
  });

  it.each(Object.keys(sizing))('%s: JSON logs, Lambda system lines only from WARN (no START/END/REPORT), application level from logLevel', (name) => {
    expect(fn(json, name).LoggingConfig).toMatchObject({ LogFormat: 'JSON', SystemLogLevel: 'WARN', ApplicationLogLevel: 'INFO' });
    expect(fn(synth({ logLevel: 'DEBUG' }).json, name).LoggingConfig.ApplicationLogLevel).toBe('DEBUG');
  });

  it('the roll-up runs without async retries (the next tick retries)', () => {
    const cfg = resourcesOfType(json, 'AWS::Lambda::EventInvokeConfig');
    expect(cfg).toHaveLength(1);
    expect(cfg[0][1].Properties).toMatchObject({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 });
    expect(cfg[0][1].Properties!.FunctionName).toEqual({ Ref: functionId(json, 'rollup') });
  });
});

describe('timing invariants between the queue, the functions and the claims', () => {
  it('visibility timeout ≥ 6 × aggregator timeout (+ batching window)', () => {
    const vt = queues().main[1].Properties!.VisibilityTimeout as number;
    expect(vt).toBeGreaterThanOrEqual(6 * fn(json, 'aggregator').Timeout);
    expect(vt).toBe(6 * 60 + 5);
  });

  it('claim staleness is ≥ the aggregator timeout and half the grace, and < the visibility timeout', () => {
    const vt = queues().main[1].Properties!.VisibilityTimeout as number;
    const env = fn(json, 'aggregator').Environment.Variables;
    const stale = Number(env.TALLY_CLAIM_STALE_SECONDS);
    expect(stale).toBeGreaterThanOrEqual(fn(json, 'aggregator').Timeout);
    expect(stale * 2).toBeGreaterThanOrEqual(Number(env.TALLY_GRACE_SECONDS));
    expect(stale).toBeLessThan(vt);
  });

  it('dedupe markers outlive any message (queue retention + DLQ retention)', () => {
    const { main, dlq } = queues();
    const lifetime = (main[1].Properties!.MessageRetentionPeriod as number) + (dlq[1].Properties!.MessageRetentionPeriod as number);
    expect(Number(fn(json, 'aggregator').Environment.Variables.TALLY_DEDUPE_TTL_DAYS) * DAY).toBeGreaterThan(lifetime);
  });

  it('a PostHog delivery with its retries fits well inside the aggregator timeout', () => {
    const worstMs = POSTHOG_REQUEST_TIMEOUT_MS * (POSTHOG_FETCH_RETRY_COUNT + 1) + POSTHOG_RETRY_DELAY_MS * POSTHOG_FETCH_RETRY_COUNT;
    expect(worstMs).toBeLessThan((fn(json, 'aggregator').Timeout * 1000) / 2);
  });
});

describe('HTTP API', () => {
  it('has exactly the routes of the route table (src/http/route-table.ts), each integrated with the function the table names', () => {
    const [apiId] = only('AWS::ApiGatewayV2::Api');
    const integrations = Object.fromEntries(
      resourcesOfType(json, 'AWS::ApiGatewayV2::Integration').map(([id, i]) => {
        expect(i.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
        return [id, refId(i.Properties!.IntegrationUri)];
      }),
    );
    const routes = resourcesOfType(json, 'AWS::ApiGatewayV2::Route').map(([, r]) => {
      expect(refId(r.Properties!.ApiId)).toBe(apiId);
      const integration = (r.Properties!.Target['Fn::Join'][1] as unknown[]).map((x) => refId(x)).find(Boolean)!;
      return `${r.Properties!.RouteKey} -> ${integrations[integration]}`;
    });
    const ingest = functionId(json, 'ingest');
    const query = functionId(json, 'query');
    const ids = { ingest, query };
    expect(routes.sort()).toEqual([...apiGatewayRoutes()].map(([key, f]) => `${key} -> ${ids[f]}`).sort());
    // Every route in both forms, and the preflights (per-project origins: ingest answers them).
    expect(ROUTES.length * 2 + 1).toBe(routes.length);
    expect(routes).toContain(`OPTIONS /{proxy+} -> ${ingest}`);
    // The routes the issue names, each also in the form that catches the trailing slash (`/batch/`).
    const keys = routes.map((r) => r.split(' -> ')[0]);
    for (const k of ['POST /v1/usage', 'POST /v1/tokens', 'POST /batch', 'POST /capture', 'POST /e', 'POST /i/v0/e', 'POST /track', 'GET /v1/usage', 'GET /v1/usage/users', 'GET /health']) {
      expect(keys).toContain(k);
      expect(keys).toContain(`${k}/{proxy+}`);
    }
    expect(keys.filter((k) => k.endsWith('/'))).toEqual([]);
  });

  it('lets API Gateway invoke each function only through its own routes, on this API', () => {
    const [apiId] = only('AWS::ApiGatewayV2::Api');
    const perms = resourcesOfType(json, 'AWS::Lambda::Permission').filter(([, p]) => p.Properties!.Principal === 'apigateway.amazonaws.com');
    const byFunction: Record<string, string[]> = {};
    for (const [, p] of perms) {
      expect(p.Properties!.Action).toBe('lambda:InvokeFunction');
      const parts = p.Properties!.SourceArn['Fn::Join'][1] as unknown[];
      expect(parts.map(refId)).toContain(apiId);
      (byFunction[refId(p.Properties!.FunctionName)!] ??= []).push(String(parts[parts.length - 1]));
    }
    const expected = (fn: 'ingest' | 'query') => [...new Set(routeKeysOf(fn).map((key) => `/*/*${key.split(' ')[1]}`))].sort();
    expect(byFunction[functionId(json, 'ingest')].sort()).toEqual(expected('ingest'));
    expect(byFunction[functionId(json, 'query')].sort()).toEqual(expected('query'));
    expect(Object.keys(byFunction)).toHaveLength(2);
  });

  it('$default stage auto-deploys with throttling, and no access logs by default (a paid line per request)', () => {
    const [, stage] = only('AWS::ApiGatewayV2::Stage');
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 5000, ThrottlingBurstLimit: 2500 },
    });
    expect(stage.Properties!.AccessLogSettings).toBeUndefined();
    expect(resourcesOfType(json, 'AWS::Logs::LogGroup')).toHaveLength(4); // the functions' own
  });

  it('accessLogs=on: JSON access logs, without query strings, to their own log group', () => {
    const s = synth({ accessLogs: 'on' });
    const [, stage] = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Stage')[0]!;
    const logs = s.json.Resources[refId(stage.Properties!.AccessLogSettings.DestinationArn)!];
    expect(logs.Type).toBe('AWS::Logs::LogGroup');
    const format = JSON.parse(stage.Properties!.AccessLogSettings.Format as string);
    expect(format).toEqual(ACCESS_LOG_FIELDS);
    expect(format.requestId).toBe('$context.requestId');
    expect(JSON.stringify(format)).not.toMatch(/querystring|rawQueryString/i);
  });

  it('throttling comes from context', () => {
    const s = synth({ throttleRate: '120', throttleBurst: 60 });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 120, ThrottlingBurstLimit: 60 },
    });
  });
});

describe('SQS', () => {
  it('main queue: 4-day retention, 1 MiB messages, SSE, DLQ after 5 receives', () => {
    const { main, dlq } = queues();
    expect(main[1].Properties).toMatchObject({
      MessageRetentionPeriod: 4 * DAY,
      MaximumMessageSize: 1024 * 1024,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq[0], 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(dlq[1].Properties).toMatchObject({ MessageRetentionPeriod: 14 * DAY, SqsManagedSseEnabled: true });
  });

  it('both queues refuse requests without TLS', () => {
    const policies = resourcesOfType(json, 'AWS::SQS::QueuePolicy');
    const protectedQueues = policies.flatMap(([, p]) => {
      const deny = asArray<any>(p.Properties!.PolicyDocument.Statement).find(
        (s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      return deny ? asArray<unknown>(p.Properties!.Queues).map(refId) : [];
    });
    const { main, dlq } = queues();
    expect(protectedQueues.sort()).toEqual([main[0], dlq[0]].sort());
  });
});

describe('event source mapping', () => {
  it('batch size, batching window, partial batch failures and max concurrency', () => {
    const [, esm] = only('AWS::Lambda::EventSourceMapping');
    expect(esm.Properties).toMatchObject({
      FunctionName: { Ref: functionId(json, 'aggregator') },
      EventSourceArn: { 'Fn::GetAtt': [queues().main[0], 'Arn'] },
      BatchSize: 10_000,
      MaximumBatchingWindowInSeconds: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 50 },
    });
  });

  it('follows context, and the visibility timeout follows the window', () => {
    const s = synth({ batchSize: 500, batchWindowSeconds: '20', maxConcurrency: 10 });
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 20,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    s.template.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 380 });
  });
});

describe('DynamoDB', () => {
  it('pk/sk strings, no index, on demand, point-in-time recovery, TTL on ttl', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    });
    expect(table.Properties!.GlobalSecondaryIndexes).toBeUndefined();
    expect(table.Properties!.LocalSecondaryIndexes).toBeUndefined();
  });

  it('is retained and deletion-protected by default', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    expect(table.Properties!.DeletionProtectionEnabled).toBe(true);
  });

  it('removalPolicy=destroy deletes the table, the generated secret and the log groups with the stack', () => {
    const s = synth({ removalPolicy: 'destroy' });
    const [, table] = resourcesOfType(s.json, 'AWS::DynamoDB::Table')[0];
    expect(table.DeletionPolicy).toBe('Delete');
    expect(table.Properties!.DeletionProtectionEnabled).toBe(false);
    for (const type of ['AWS::Logs::LogGroup', 'AWS::SecretsManager::Secret']) {
      for (const [, r] of resourcesOfType(s.json, type)) expect(r.DeletionPolicy).toBe('Delete');
    }
  });
});

describe('IAM least privilege', () => {
  const logsGrant = (name: string) => ({
    'logs:CreateLogStream': [refId(fn(json, name).LoggingConfig.LogGroup)!],
    'logs:PutLogEvents': [refId(fn(json, name).LoggingConfig.LogGroup)!],
  });
  /** The table actions granted, each on the table alone. */
  const onTable = (t: string, actions: string[]) => Object.fromEntries(actions.map((a) => [`dynamodb:${a}`, [t]]));

  it('ingest may send to its queue, read keys, projects and counters, and write only keys and rate buckets (and read its two secrets)', () => {
    const t = tableId();
    expect(grants(json, roleOf('ingest'))).toEqual({
      ...logsGrant('ingest'),
      'sqs:SendMessage': [queues().main[0]],
      'secretsmanager:GetSecretValue': [apiKeysSecret(), tokenSecret()].sort(),
      ...onTable(t, ['GetItem', 'BatchGetItem', 'Query']),
      // The import of the configured keys; last-used times and rate-limit leases: by partition key only.
      'dynamodb:PutItem': [`${t} if pk in [PROJECTS, KEY#*, KEYS#*]`],
      'dynamodb:UpdateItem': [`${t} if pk in [KEYS#*, RL#*]`],
    });
  });

  it('aggregator may only consume its queue and write claims, deltas and markers to its table', () => {
    const t = tableId();
    const q = queues().main[0];
    expect(grants(json, roleOf('aggregator'))).toEqual({
      ...logsGrant('aggregator'),
      'sqs:ReceiveMessage': [q],
      'sqs:DeleteMessage': [q],
      'sqs:GetQueueAttributes': [q],
      ...onTable(t, ['PutItem', 'GetItem', 'BatchGetItem', 'UpdateItem']),
    });
  });

  it('query may read its table, and write only keys (the import, last-used times); it reads the API keys, not the token secret', () => {
    const t = tableId();
    expect(grants(json, roleOf('query'))).toEqual({
      ...logsGrant('query'),
      ...onTable(t, ['GetItem', 'BatchGetItem', 'Query']),
      'dynamodb:PutItem': [`${t} if pk in [PROJECTS, KEY#*, KEYS#*]`],
      'dynamodb:UpdateItem': [`${t} if pk in [KEYS#*]`],
      'secretsmanager:GetSecretValue': [apiKeysSecret()],
    });
  });

  it('rollup may only work on its table (and read the PostHog key)', () => {
    const t = tableId();
    const posthog = grants(json, roleOf('rollup'))['secretsmanager:GetSecretValue']!;
    expect(posthog[0]).toContain(':secret:tally/dev/posthog-api-key-??????');
    expect(grants(json, roleOf('rollup'))).toEqual({
      ...logsGrant('rollup'),
      ...onTable(t, ['PutItem', 'GetItem', 'BatchGetItem', 'UpdateItem', 'Query', 'DeleteItem']),
      'secretsmanager:GetSecretValue': posthog,
    });
  });

  it('nobody is granted BatchWriteItem: nothing calls it', () => {
    expect(JSON.stringify(json)).not.toContain('dynamodb:BatchWriteItem');
  });

  it('roles have no managed policies and trust only Lambda', () => {
    for (const name of ['ingest', 'aggregator', 'query', 'rollup']) {
      const role = json.Resources[roleOf(name)];
      expect(role.Properties!.ManagedPolicyArns).toBeUndefined();
      expect(role.Properties!.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
    }
  });

  it('no policy allows a wildcard action, and no Allow has a * resource', () => {
    const statements = allStatements(json);
    expect(statements.length).toBeGreaterThan(10);
    for (const { statement } of statements) {
      const actions = asArray(statement.Action);
      if (statement.Effect === 'Allow') {
        for (const a of actions) expect(a).not.toMatch(/\*/);
        for (const r of asArray(statement.Resource)) expect(r).not.toBe('*');
      }
    }
  });

  it('the only wildcard actions are the queue policies denying non-TLS requests', () => {
    const wildcard = allStatements(json).filter(({ statement }) => asArray(statement.Action).some((a) => /\*/.test(a)));
    expect(wildcard.length).toBe(2);
    for (const { type, statement } of wildcard) {
      expect(type).toBe('AWS::SQS::QueuePolicy');
      expect(statement).toMatchObject({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    }
    // Nothing at all on DynamoDB uses a wildcard.
    expect(JSON.stringify(json)).not.toContain('dynamodb:*');
  });
});

describe('secrets', () => {
  it('the generated API-keys and token secrets hold no value in the template', () => {
    const secrets = Object.fromEntries(resourcesOfType(json, 'AWS::SecretsManager::Secret').map(([id, r]) => [id, r]));
    expect(Object.keys(secrets).sort()).toEqual([apiKeysSecret(), tokenSecret()].sort());
    for (const secret of Object.values(secrets)) expect(secret.Properties!.SecretString).toBeUndefined();
    expect(secrets[apiKeysSecret()]!.Properties!.GenerateSecretString).toMatchObject({ ExcludePunctuation: true, IncludeSpace: false, PasswordLength: 40 });
    expect(secrets[tokenSecret()]!.Properties!.GenerateSecretString).toMatchObject({ ExcludePunctuation: true, IncludeSpace: false, PasswordLength: 64 });
    expect(JSON.stringify(json)).not.toMatch(/phc_/);
  });

  it('the token secret reaches ingest only, as *_SECRET_ARN', () => {
    expect(refId(fn(json, 'ingest').Environment.Variables.TALLY_TOKEN_SECRET_SECRET_ARN)).toBe(tokenSecret());
    for (const name of ['aggregator', 'rollup', 'query']) expect(fn(json, name).Environment.Variables).not.toHaveProperty('TALLY_TOKEN_SECRET_SECRET_ARN');
  });

  it('apiKeysSecretName references an existing secret instead of creating one', () => {
    const s = synth({ apiKeysSecretName: 'team/tally-keys' });
    expect(resourcesOfType(s.json, 'AWS::SecretsManager::Secret').map(([id]) => id)).toEqual([secretId('TokenSecret', s.json)]);
    const ingestGrants = grants(s.json, refId(fn(s.json, 'ingest').Role)!);
    expect(ingestGrants['secretsmanager:GetSecretValue'].filter((x) => x.includes(':secret:team/tally-keys-??????'))).toHaveLength(1);
    expect(JSON.stringify(fn(s.json, 'ingest').Environment.Variables.TALLY_API_KEYS_SECRET_ARN)).toContain(':secret:team/tally-keys"');
  });

  it('posthogSecretName and posthogHost come from context', () => {
    const s = synth({ posthogSecretName: 'prod/posthog', posthogHost: 'https://eu.i.posthog.com' });
    const env = fn(s.json, 'rollup').Environment.Variables;
    expect(env.POSTHOG_HOST).toBe('https://eu.i.posthog.com');
    expect(JSON.stringify(env.POSTHOG_API_KEY_SECRET_ARN)).toContain(':secret:prod/posthog"');
  });
});

describe('roll-up schedule', () => {
  it('runs the roll-up every minute', () => {
    const [, rule] = only('AWS::Events::Rule');
    expect(rule.Properties).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
    expect(rule.Properties!.Targets).toHaveLength(1);
    expect(rule.Properties!.Targets[0]).toMatchObject({ Arn: { 'Fn::GetAtt': [functionId(json, 'rollup'), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } });
    base.template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionId(json, 'rollup'), 'Arn'] },
    });
  });

  it('window, grace, shards and dimensions from context reach every function that counts', () => {
    const s = synth({ windowSeconds: 300, graceSeconds: 90, shards: 16, dimensions: 'route,status' });
    for (const name of ['aggregator', 'rollup', 'query']) {
      expect(fn(s.json, name).Environment.Variables).toMatchObject({ TALLY_WINDOW_SECONDS: '300', TALLY_GRACE_SECONDS: '90', TALLY_SHARDS: '16', TALLY_DIMENSIONS: 'route,status' });
    }
    expect(() => synth({ windowSeconds: 45 })).toThrow(/windowSeconds/);
  });
});

describe('alarms', () => {
  const alarms = (): Record<string, Record<string, any>> =>
    Object.fromEntries(resourcesOfType(json, 'AWS::CloudWatch::Alarm').map(([, a]) => [a.Properties!.AlarmName, a.Properties!]));
  const topicId = () => only('AWS::SNS::Topic')[0];

  it('the full set exists and every alarm notifies the topic on alarm and on recovery', () => {
    const a = alarms();
    expect(Object.keys(a).sort()).toEqual(
      [
        'aggregator-errors',
        'aggregator-throttles',
        'api-5xx-rate',
        'auth-unavailable',
        'dlq-not-empty',
        'ingest-errors',
        'ingest-p99-duration',
        'ingest-throttles',
        'outbox-age',
        'posthog-delivery-failures',
        'posthog-rejected',
        'queue-oldest-message-age',
        'quota-exceeded',
        'rollup-behind',
        'rollup-errors',
      ].map((n) => `tally-dev-${n}`),
    );
    for (const p of Object.values(a)) {
      expect(p.AlarmActions).toEqual([{ Ref: topicId() }]);
      expect(p.OKActions).toEqual([{ Ref: topicId() }]);
      expect(p.TreatMissingData).toBe('notBreaching');
      expect(String(p.AlarmDescription).length).toBeGreaterThan(30);
    }
  });

  it('DLQ not empty and age of oldest message watch the right queues', () => {
    const a = alarms();
    const { main, dlq } = queues();
    expect(a['tally-dev-dlq-not-empty']).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq[0], 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(a['tally-dev-queue-oldest-message-age']).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [main[0], 'QueueName'] } }],
      Threshold: 600,
    });
  });

  it('function errors, throttles and ingest p99 duration watch the right functions', () => {
    const a = alarms();
    const dim = (name: string) => [{ Name: 'FunctionName', Value: { Ref: functionId(json, name) } }];
    expect(a['tally-dev-aggregator-errors']).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: dim('aggregator') });
    expect(a['tally-dev-aggregator-throttles']).toMatchObject({ MetricName: 'Throttles', Dimensions: dim('aggregator') });
    expect(a['tally-dev-ingest-errors']).toMatchObject({ MetricName: 'Errors', Dimensions: dim('ingest') });
    expect(a['tally-dev-ingest-throttles']).toMatchObject({ MetricName: 'Throttles', Dimensions: dim('ingest') });
    expect(a['tally-dev-ingest-p99-duration']).toMatchObject({
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Dimensions: dim('ingest'),
      Threshold: 1000,
    });
    expect(a['tally-dev-rollup-errors']).toMatchObject({ MetricName: 'Errors', Dimensions: dim('rollup') });
  });

  it('API 5xx rate is 5xx / requests of this API, as a percentage', () => {
    const p = alarms()['tally-dev-api-5xx-rate'];
    const [apiId] = only('AWS::ApiGatewayV2::Api');
    expect(p.Threshold).toBe(1);
    const byId = Object.fromEntries((p.Metrics as any[]).map((m) => [m.Id, m]));
    expect(byId.expr_1?.Expression ?? (p.Metrics as any[]).find((m) => m.Expression)?.Expression).toBe('IF(requests > 0, 100 * errors / requests, 0)');
    expect(byId.errors.MetricStat.Metric).toEqual({ Namespace: 'AWS/ApiGateway', MetricName: '5xx', Dimensions: [{ Name: 'ApiId', Value: { Ref: apiId } }] });
    expect(byId.requests.MetricStat.Metric).toMatchObject({ MetricName: 'Count' });
  });

  it('PostHog delivery, the outbox and the roll-up use tally metrics (names from src/observability.ts)', () => {
    const a = alarms();
    const metricOf = (name: string) => ((a[name]!.Metrics as any[] | undefined)?.[0]?.MetricStat ?? { Metric: { Namespace: a[name]!.Namespace, MetricName: a[name]!.MetricName, Dimensions: a[name]!.Dimensions }, Stat: a[name]!.Statistic, Period: a[name]!.Period });
    const rollup = [{ Name: 'service', Value: 'rollup' }];
    expect(metricOf('tally-dev-posthog-delivery-failures')).toMatchObject({ Metric: { Namespace: METRIC_NAMESPACE, MetricName: METRICS.BatchEventsFailed, Dimensions: rollup } });
    expect(metricOf('tally-dev-posthog-rejected')).toMatchObject({ Metric: { MetricName: METRICS.PostHogEventsRejected, Dimensions: rollup } });
    expect(metricOf('tally-dev-rollup-behind')).toMatchObject({ Metric: { MetricName: METRICS.ShardsBehind, Dimensions: rollup }, Stat: 'Minimum', Period: 60 });
    expect(metricOf('tally-dev-outbox-age')).toMatchObject({ Metric: { MetricName: METRICS.OutboxOldestAge, Dimensions: rollup }, Stat: 'Maximum', Period: 60 });
    expect(a['tally-dev-outbox-age']).toMatchObject({ Threshold: 900, EvaluationPeriods: 3, DatapointsToAlarm: 3 });
  });

  it('no e-mail subscription unless alarmEmail is set', () => {
    expect(resourcesOfType(json, 'AWS::SNS::Subscription')).toHaveLength(0);
    const s = synth({ alarmEmail: 'ops@example.com' });
    s.template.resourceCountIs('AWS::SNS::Subscription', 1);
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('thresholds come from context', () => {
    const s = synth({ queueAgeAlarmSeconds: 120, ingestP99AlarmMs: 250, api5xxAlarmPercent: '0.5', outboxAgeAlarmSeconds: 3600 });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'tally-dev-queue-oldest-message-age', Threshold: 120 });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'tally-dev-ingest-p99-duration', Threshold: 250 });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'tally-dev-api-5xx-rate', Threshold: 0.5 });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'tally-dev-outbox-age', Threshold: 3600 });
  });
});

describe('dashboard', () => {
  it('shows traffic, latency, errors and saturation, including tally metrics', () => {
    const [, dashboard] = only('AWS::CloudWatch::Dashboard');
    expect(dashboard.Properties!.DashboardName).toBe('tally-dev');
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    for (const title of ['API requests', 'API latency', 'API 4xx / 5xx', 'Concurrent executions', 'Throttles', 'Backlog']) {
      expect(body).toContain(title);
    }
    for (const metric of Object.values(METRICS)) expect(body).toContain(metric);
    for (const metric of ['ConcurrentExecutions', 'ApproximateAgeOfOldestMessage', 'Latency', 'IntegrationLatency', 'WriteThrottleEvents']) {
      expect(body).toContain(metric);
    }
  });

  it('shows the per-project limits’ answers as their own widget: RequestsRejected of ingest by reason rate_limited and quota_exceeded', () => {
    const [, dashboard] = only('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard.Properties!.DashboardBody);
    expect(body).toContain('Limits: rate-limited and over-quota answers (429)');
    for (const reason of ['rate_limited', 'quota_exceeded']) {
      expect(body).toContain(JSON.stringify([METRIC_NAMESPACE, METRICS.RequestsRejected, 'reason', reason, 'service', 'ingest']).slice(1, -1).replace(/"/g, '\\"'));
    }
    const alarm = resourcesOfType(json, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!).find((a) => a.AlarmName === 'tally-dev-quota-exceeded')!;
    expect(alarm.Threshold).toBe(1);
    expect(alarm.Metrics[0].MetricStat.Metric).toMatchObject({ Namespace: METRIC_NAMESPACE, MetricName: METRICS.RequestsRejected, Dimensions: [{ Name: 'reason', Value: 'quota_exceeded' }, { Name: 'service', Value: 'ingest' }] });
  });
});

describe('CORS: per-project origins (no deploy), answered by the functions', () => {
  it('API Gateway answers no preflight itself (it would fix the origins at deploy time): OPTIONS goes to ingest', () => {
    for (const j of [json, synth({ corsOrigins: 'https://app.example.com' }).json]) {
      const [, api] = resourcesOfType(j, 'AWS::ApiGatewayV2::Api')[0]!;
      expect(api.Properties!.CorsConfiguration).toBeUndefined();
      expect(resourcesOfType(j, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties!.RouteKey)).toContain('OPTIONS /{proxy+}');
    }
    for (const name of ['ingest', 'query']) expect(fn(json, name).Environment.Variables).not.toHaveProperty('TALLY_CORS_ORIGINS');
  });

  it('corsOrigins: the origins every project allows, given to both functions', () => {
    const s = synth({ corsOrigins: 'https://app.example.com, https://admin.example.com' });
    for (const name of ['ingest', 'query']) expect(fn(s.json, name).Environment.Variables.TALLY_CORS_ORIGINS).toBe('https://app.example.com,https://admin.example.com');
    expect(() => synth({ corsOrigins: 'app.example.com/path' })).toThrow(/corsOrigins/);
  });
});

describe('front door: function-url', () => {
  let f: Synth;
  beforeAll(() => {
    f = synth({ frontDoor: 'function-url', corsOrigins: 'https://app.example.com' });
  });

  it('a public Function URL on ingest, which serves every route; no API Gateway, no query function', () => {
    expect(resourcesOfType(f.json, 'AWS::ApiGatewayV2::Api')).toHaveLength(0);
    expect(resourcesOfType(f.json, 'AWS::Lambda::Function').map(([, x]) => x.Properties!.FunctionName).sort()).toEqual(['tally-dev-aggregator', 'tally-dev-ingest', 'tally-dev-rollup']);
    const [, url] = resourcesOfType(f.json, 'AWS::Lambda::Url')[0]!;
    expect(url.Properties).toMatchObject({ AuthType: 'NONE', InvokeMode: 'BUFFERED' });
    expect(refId(url.Properties!.TargetFunctionArn)).toBe(functionId(f.json, 'ingest'));
    // CORS is the function's (src/http/cors.ts): the URL sets none, so no header is set twice.
    expect(url.Properties!.Cors).toBeUndefined();
    expect(fn(f.json, 'ingest').Environment.Variables).toMatchObject({ TALLY_FRONT_DOOR: 'function-url', TALLY_CORS_ORIGINS: 'https://app.example.com' });
    expect(refId(fn(f.json, 'ingest').Environment.Variables.TALLY_TABLE_NAME)).toBe(resourcesOfType(f.json, 'AWS::DynamoDB::Table')[0]![0]);
    expect(JSON.stringify(f.json.Outputs!.ApiUrl.Value)).toContain('FunctionUrl');
  });

  it('ingest may send to its queue, read the counters, keys and secrets, and write only keys and rate buckets; nothing else', () => {
    const role = refId(fn(f.json, 'ingest').Role)!;
    const g = grants(f.json, role);
    const table = resourcesOfType(f.json, 'AWS::DynamoDB::Table')[0]![0];
    expect(Object.keys(g).sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
      'sqs:SendMessage',
    ]);
    expect(g['dynamodb:GetItem']).toEqual([table]);
    expect(g['dynamodb:PutItem']).toEqual([`${table} if pk in [PROJECTS, KEY#*, KEYS#*]`]);
    expect(g['dynamodb:UpdateItem']).toEqual([`${table} if pk in [KEYS#*, RL#*]`]);
  });

  it('the 5xx alarm and the dashboard watch the Function URL', () => {
    const alarm = resourcesOfType(f.json, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties!).find((a) => a.AlarmName === 'tally-dev-api-5xx-rate')!;
    const byId = Object.fromEntries((alarm.Metrics as any[]).map((m) => [m.Id, m]));
    expect(byId.errors.MetricStat.Metric).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Url5xxCount', Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId(f.json, 'ingest') } }] });
    expect(byId.requests.MetricStat.Metric).toMatchObject({ MetricName: 'UrlRequestCount' });
    const body = JSON.stringify(resourcesOfType(f.json, 'AWS::CloudWatch::Dashboard')[0]![1].Properties!.DashboardBody);
    for (const m of ['UrlRequestCount', 'Url4xxCount', 'Url5xxCount', 'UrlRequestLatency']) expect(body).toContain(m);
  });

  it('no access logs to turn on: the combination is refused', () => {
    expect(() => synth({ frontDoor: 'function-url', accessLogs: 'on' })).toThrow(/accessLogs/);
  });
});

describe('outputs and naming', () => {
  it('exports the API URL and what an operator needs', () => {
    expect(Object.keys(json.Outputs ?? {}).sort()).toEqual(
      ['AlarmTopicArn', 'ApiKeysSecretArn', 'ApiUrl', 'DashboardUrl', 'DeadLetterQueueUrl', 'PosthogSecretName', 'QueueUrl', 'TableName', 'TokenSecretArn'].sort(),
    );
    expect(JSON.stringify(json.Outputs!.ApiUrl.Value)).toContain('execute-api');
  });

  it('the stage names the stack, the functions, the alarms and the default PostHog secret', () => {
    const s = synth({}, { TALLY_STAGE: 'prod' });
    expect(s.stack.stackName).toBe('Tally-prod');
    expect(fn(s.json, 'ingest').FunctionName).toBe('tally-prod-ingest');
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'tally-prod-dlq-not-empty' });
    expect(JSON.stringify(fn(s.json, 'rollup').Environment.Variables.POSTHOG_API_KEY_SECRET_ARN)).toContain('tally/prod/posthog-api-key');
  });

  it('is environment-agnostic: no account or Region baked in', () => {
    expect(base.stack.account).toMatch(/^\$\{Token/);
    expect(base.stack.region).toMatch(/^\$\{Token/);
    expect(JSON.stringify(json)).not.toMatch(/\b\d{12}\b/);
  });
});

it('memory and timeouts are written down in the function sizing', () => {
  for (const s of [INGEST, AGGREGATOR, QUERY, ROLLUP]) expect(s.why).toMatch(/\d+ (MB|GB|s)/);
});
