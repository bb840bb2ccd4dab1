/**
 * Deployment configuration: CDK context first (`-c key=value` or cdk.json), then an environment
 * variable (`TALLY_<KEY_IN_SNAKE_CASE>`), then the default below. Every value is validated here, so a
 * typo fails `cdk synth` with a message naming the key instead of producing a broken stack.
 *
 * docs/DEPLOY.md documents the same table; `CONTEXT_KEYS` is the single source of truth for it.
 */
import { z } from 'zod';
import { parsePersonPropertyMapping } from '../src/sampling/person';
import { isWindowLength } from '../src/windows';

/** CloudWatch Logs accepts only these retention periods (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z
  .object({
    /** Stage name: part of the stack name (`Tally-<stage>`), function names and the default secret name. */
    stage: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and "-", starting with a letter, at most 20 characters')
      .default('dev'),
    /** PostHog ingestion host the roll-up delivers batch events to. */
    posthogHost: z.url().default('https://us.i.posthog.com'),
    /** Secrets Manager name of the PostHog project key (you create it; see DEPLOY.md). Default tally/<stage>/posthog-api-key. */
    posthogSecretName: z.string().min(1).optional(),
    /** Secrets Manager name of the client API keys (comma-separated). Unset: the stack creates a generated one. */
    apiKeysSecretName: z.string().min(1).optional(),
    /** API Gateway stage throttle: steady requests per second across all routes. */
    throttleRate: int(1, 1_000_000).default(5000),
    /** API Gateway stage throttle: burst (token bucket size). */
    throttleBurst: int(1, 1_000_000).default(2500),
    /** SQS → aggregator: most messages per invocation (≤ 10 without a batching window). */
    batchSize: int(1, 10_000).default(10_000),
    /** SQS → aggregator: seconds Lambda waits to fill a batch (0–300). */
    batchWindowSeconds: int(0, 300).default(5),
    /** SQS → aggregator: most concurrent aggregator invocations (2–1,000). */
    maxConcurrency: int(2, 1000).default(50),
    /** Aggregation window, seconds (`TALLY_WINDOW_SECONDS`): one PostHog batch event per (event, user, window). */
    windowSeconds: z.coerce.number().refine(isWindowLength, 'must divide 3600 and be 10, 12, 15, 20, 30 or whole minutes').default(60),
    /** Seconds after a window closes before it is rolled up (`TALLY_GRACE_SECONDS`): covers batches in flight. */
    graceSeconds: int(2, 120).default(60),
    /** Up to 3 event properties that split counters and batch events (`TALLY_DIMENSIONS`, e.g. `route,status`). */
    dimensions: z
      .string()
      .refine((s) => s.split(',').filter((x) => x.trim()).length <= 3, 'at most 3 comma-separated property names')
      .optional(),
    /** Per-user roll-up shards (`TALLY_SHARDS`): the roll-up's parallelism. */
    shards: int(1, 64).default(8),
    /** E-mail address subscribed to the alarm topic (confirm the subscription e-mail). Unset: no subscription. */
    alarmEmail: z.email().optional(),
    /** What happens to the table, API-keys secret and log groups on `cdk destroy`. */
    removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
    /** CloudWatch Logs retention for function and access logs. */
    logRetentionDays: z.coerce
      .number()
      .int()
      .refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), `one of ${LOG_RETENTION_DAYS.join(', ')}`)
      .default(30),
    /**
     * Which AWS clients the functions use (`TALLY_AWS_CLIENT`): `json`, tally's own JSON-protocol clients
     * (a third of the SDK's CPU per call), or `sdk`, the AWS SDK v3 clients behind the same interfaces.
     */
    awsClient: z.enum(['json', 'sdk']).default('json'),
    /** Powertools log level of every function. */
    logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
    /** Days minute and hour resolution is kept (DynamoDB TTL on hour items); days and months are kept. */
    minuteTtlDays: int(1, 3650).default(14),
    /**
     * How clients reach ingest and query: `http-api`, an API Gateway HTTP API (stage throttling, optional
     * access logs, $1.00 per million requests), or `function-url`, a Lambda Function URL on the ingest
     * function, which then serves every route (no charge beyond Lambda; throttled only by
     * `ingestReservedConcurrency`). docs/DEPLOY.md compares them.
     */
    frontDoor: z.enum(['http-api', 'function-url']).default('http-api'),
    /**
     * Concurrency reserved for (and capping) the ingest function: the Function URL front door's throttle.
     * A reservation must leave 10 unreserved in the account, so it is refused unless `lambdaConcurrencyQuota`
     * says the account has room. Unset: no reservation (and no throttle besides the account's).
     */
    ingestReservedConcurrency: int(1, 100_000).optional(),
    /**
     * The account's Lambda concurrency quota in this Region (`aws lambda get-account-settings`:
     * AccountLimit.ConcurrentExecutions). Default 10, what a new account may have: any reservation then fails.
     */
    lambdaConcurrencyQuota: int(10, 1_000_000).default(10),
    /** Browser origins allowed to call the API (CORS), comma-separated, or `*`. Unset: none. */
    corsOrigins: z
      .string()
      .refine((s) => s.split(',').map((o) => o.trim()).filter(Boolean).every((o) => o === '*' || /^https?:\/\/[^/\s]+$/.test(o)), 'comma-separated scheme://host[:port] origins, or *')
      .optional(),
    /** API Gateway access logs (one JSON line per request, ~450 bytes: $0.22 per million requests). */
    accessLogs: z.enum(['off', 'on']).default('off'),
    /** Alarm: age in seconds of the oldest queued message. */
    queueAgeAlarmSeconds: int(60, 1_209_600).default(600),
    /** Alarm: ingest p99 duration in milliseconds. */
    ingestP99AlarmMs: int(10, 10_000).default(1000),
    /** Alarm: API 5xx responses as a percentage of requests. */
    api5xxAlarmPercent: z.coerce.number().gt(0).max(100).default(1),
    /** Alarm: age in seconds of the oldest PostHog event waiting in the outbox. */
    outboxAgeAlarmSeconds: int(60, 1_209_600).default(900),
    /**
     * Secrets Manager name of a PostHog personal (phx_) or project secret (phs_) API key with feature-flag
     * read access (you create it; docs/SAMPLING.md). Set: ingest samples with a feature flag evaluated
     * locally, sends sampled events raw to PostHog and forwards the flag routes; it also reads the
     * PostHog project key. Unset: no sampling, and the flag routes answer 503.
     */
    samplingSecretName: z.string().min(1).optional(),
    /** The sampling feature flag's key. */
    samplingFlagKey: z.string().min(1).max(400).default('usage-sampling'),
    /** Event properties offered to the flag as person properties: `personProp=eventProp,prop` (besides $set/$set_once). */
    samplingPersonProperties: z
      .string()
      .refine((s) => {
        try {
          parsePersonPropertyMapping(s);
          return true;
        } catch {
          return false;
        }
      }, 'comma-separated personProperty=eventProperty pairs or property names')
      .optional(),
    /** Bound, in ms, of PostHog work on an ingest request: the raw capture (and, on a cold start, the first definitions). */
    samplingTimeoutMs: int(100, 3000).default(1000),
  })
  .superRefine((c, ctx) => {
    if (c.batchSize > 10 && c.batchWindowSeconds < 1) {
      ctx.addIssue({ code: 'custom', path: ['batchWindowSeconds'], message: 'must be at least 1 when batchSize is above 10 (SQS event source rule)' });
    }
    if (c.ingestReservedConcurrency !== undefined && c.lambdaConcurrencyQuota - c.ingestReservedConcurrency < MIN_UNRESERVED_CONCURRENCY) {
      ctx.addIssue({
        code: 'custom',
        path: ['ingestReservedConcurrency'],
        message:
          `reserving ${c.ingestReservedConcurrency} would leave ${c.lambdaConcurrencyQuota - c.ingestReservedConcurrency} of the account's ${c.lambdaConcurrencyQuota} unreserved; ` +
          `Lambda keeps at least ${MIN_UNRESERVED_CONCURRENCY} and fails the deploy otherwise. Check the quota (aws lambda get-account-settings), ` +
          `raise it in Service Quotas if needed, and pass it as lambdaConcurrencyQuota`,
      });
    }
    if (c.accessLogs === 'on' && c.frontDoor === 'function-url') {
      ctx.addIssue({ code: 'custom', path: ['accessLogs'], message: 'access logs are an API Gateway feature: frontDoor=function-url has none' });
    }
  });

/** Lambda refuses a reservation that leaves fewer than this unreserved in the account. */
export const MIN_UNRESERVED_CONCURRENCY = 10;

/** The CORS origins of a config, as a list (empty: none allowed). */
export const corsOriginsOf = (c: Pick<TallyConfig, 'corsOrigins'>): string[] => (c.corsOrigins ?? '').split(',').map((o) => o.trim()).filter(Boolean);

export type TallyConfig = Omit<z.infer<typeof schema>, 'posthogSecretName'> & {
  /** Always set: defaults to tally/<stage>/posthog-api-key. */
  posthogSecretName: string;
};

export type ContextKey = keyof z.infer<typeof schema>;
export const CONTEXT_KEYS = Object.keys(schema.shape) as ContextKey[];
/** The sampling keys, documented in docs/SAMPLING.md. */
export const SAMPLING_CONTEXT_KEYS: readonly ContextKey[] = ['samplingSecretName', 'samplingFlagKey', 'samplingPersonProperties', 'samplingTimeoutMs'];

/** `batchWindowSeconds` → `TALLY_BATCH_WINDOW_SECONDS`. */
export function envVarFor(key: string): string {
  return `TALLY_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toUpperCase()}`;
}

/** Thrown when context or environment holds an invalid value; names every bad key. */
export class DeployConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid tally deploy configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'DeployConfigError';
  }
}

/**
 * Reads the configuration. `context(key)` is `node.tryGetContext`; `env` is `process.env`.
 * Empty strings count as unset, so `-c alarmEmail=` turns a value from the environment off.
 */
export function readConfig(
  context: (key: string) => unknown,
  env: Record<string, string | undefined> = process.env,
): TallyConfig {
  const input: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const key of CONTEXT_KEYS) {
    const fromContext = context(key);
    if (fromContext !== undefined && fromContext !== null) {
      sources[key] = `context "${key}"`;
      if (fromContext !== '') input[key] = fromContext;
      continue;
    }
    const fromEnv = env[envVarFor(key)];
    if (fromEnv !== undefined && fromEnv !== '') {
      input[key] = fromEnv;
      sources[key] = `environment ${envVarFor(key)}`;
    }
  }
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new DeployConfigError(
      r.error.issues.map((i) => {
        const key = String(i.path[0] ?? '(config)');
        return `${key} (${sources[key] ?? 'default'}): ${i.message}`;
      }),
    );
  }
  return { ...r.data, posthogSecretName: r.data.posthogSecretName ?? `tally/${r.data.stage}/posthog-api-key` };
}
