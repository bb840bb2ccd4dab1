/**
 * All configuration is read and validated here, once, from environment variables.
 * Each function asks for the slice it needs; a missing or malformed variable fails fast at init
 * with a message naming it.
 */
import * as z from 'zod/mini';
import { parsePersonPropertyMapping } from './sampling/person';
import { isWindowLength } from './windows';

// zod/mini: every Lambda validates its config at init, and classic zod was 440 KB of each bundle.

const isInt = z.refine(Number.isInteger, 'must be an integer');
/** A number from the environment within [min, max], with a default. */
const num = (def: number, min: number, max = Number.MAX_SAFE_INTEGER, integer = true) =>
  z._default(z.coerce.number().check(...(integer ? [isInt] : []), z.gte(min), z.lte(max)), def);
const int = (def: number) => num(def, 0);
const str = (min = 1, max?: number) => z.string().check(z.minLength(min), ...(max !== undefined ? [z.maxLength(max)] : []));
const csv = z.pipe(
  z.string(),
  z.transform((s: string) => s.split(',').map((k) => k.trim()).filter((k) => k.length > 0)),
);

/**
 * How tally talks to AWS: which implementation of its SQS and DynamoDB interfaces (docs: README, "The
 * AWS SDK as a switch"), and the endpoint variables the AWS SDKs honour, honoured by both implementations.
 */
const awsClients = z.object({
  /**
   * `json`: tally's own clients of the AWS JSON protocol (src/aws/json-client.ts), a third of the AWS SDK's
   * CPU per call (docs/PERFORMANCE.md). `sdk`: the AWS SDK v3 clients behind the same interfaces, loaded
   * only when chosen.
   */
  TALLY_AWS_CLIENT: z._default(z.enum(['json', 'sdk'], { error: 'must be json or sdk' }), 'json'),
  /** Every service's endpoint (LocalStack, a proxy); signed with the environment's credentials. */
  AWS_ENDPOINT_URL: z.optional(z.url()),
  AWS_ENDPOINT_URL_SQS: z.optional(z.url()),
  AWS_ENDPOINT_URL_DYNAMODB: z.optional(z.url()),
  AWS_ENDPOINT_URL_SECRETS_MANAGER: z.optional(z.url()),
});

/** Variables every function understands. */
const common = z.extend(awsClients, {
  AWS_REGION: z._default(z.string(), 'us-east-1'),
  /** Local emulators (the local stack and tests point these at dynalite/fauxqs); any credentials work there. */
  TALLY_SQS_ENDPOINT: z.optional(z.url()),
  TALLY_DYNAMODB_ENDPOINT: z.optional(z.url()),
});

/** What src/secrets.ts needs before any other configuration can be read (it resolves secrets into it). */
export const secretsConfigSchema = z.pick(common, { AWS_REGION: true, AWS_ENDPOINT_URL: true, AWS_ENDPOINT_URL_SECRETS_MANAGER: true });
export type SecretsConfig = z.infer<typeof secretsConfigSchema>;

/** Browsers allowed to call ingest and query (src/http/cors.ts): every project's own origins, plus this list. */
const cors = z.object({
  /** Comma-separated origins (`https://app.example.com`), or `*`, that every project allows. Default: none. */
  TALLY_CORS_ORIGINS: z.pipe(
    z.pipe(
      z._default(z.string(), ''),
      z.transform((s: string) => s.split(',').map((k) => k.trim()).filter((k) => k.length > 0)),
    ),
    z.array(z.string().check(z.refine((o: string) => o === '*' || /^https?:\/\/[^/\s]+$/.test(o), 'origins are scheme://host[:port] without a path, or *'))),
  ),
});

/** Which front door reaches the functions (lib/config.ts `frontDoor`). */
const frontDoor = z.object({
  /** `function-url`: ingest is the only function behind the door and also serves the query routes (src/http/all-routes.ts). */
  TALLY_FRONT_DOOR: z._default(z.enum(['http-api', 'function-url'], { error: 'must be http-api or function-url' }), 'http-api'),
});

/** What ingest accepts (src/ingest/schema.ts). */
const ingestLimits = z.object({
  /**
   * Oldest event timestamp accepted, in days before receipt (events up to 1 day ahead are accepted).
   * Older or further ahead: 400 naming the field. Longer than the minute counters are kept, so late
   * events still count in hours and days.
   */
  TALLY_MAX_EVENT_AGE_DAYS: num(35, 1, 3650),
});

const apiKeys = z.object({
  /**
   * Configured keys (comma-separated): imported at cold start as keys of the `default` project with every
   * scope (src/projects/admin.ts), so a deployment from before managed keys keeps working. Default: none.
   */
  TALLY_API_KEYS: z._default(z.pipe(csv, z.array(z.string().check(z.minLength(8, 'API keys must be at least 8 characters'), z.regex(/^[\x21-\x7e]{8,200}$/, 'API keys are 8–200 printable ASCII characters without spaces')))), []),
});

/** Projects and keys (src/projects/): where they are, and the master secret of client tokens. */
const projects = z.object({
  /** The table holding projects and keys (the counters' table). */
  TALLY_TABLE_NAME: str(),
  /**
   * Master secret client tokens are signed with (each project's token secret derives from it); in AWS a
   * generated Secrets Manager secret (`TALLY_TOKEN_SECRET_SECRET_ARN`). Unset: tokens are refused.
   */
  TALLY_TOKEN_SECRET: z.optional(z.string().check(z.minLength(32, 'must be at least 32 characters'))),
});

/**
 * How posthog-node's requests go out: `node` (default), tally's `fetch` over `node:http(s)`
 * (src/sink/http-fetch.ts, a quarter of the global fetch's CPU per request); `fetch`, posthog-node's own
 * (the global `fetch`, undici).
 */
const posthogHttp = z._default(z.enum(['node', 'fetch'], { error: 'must be node or fetch' }), 'node');

const posthog = z.object({
  /** PostHog project key (phc_…). Without it, PostHog events are printed (local) or fail the send. */
  POSTHOG_API_KEY: z.optional(str()),
  POSTHOG_HOST: z._default(z.url(), 'https://us.i.posthog.com'),
  /** Bounded on purpose: posthog-node's defaults (10 s × 3 retries × 3 s) can hold an invocation ~49 s. */
  POSTHOG_REQUEST_TIMEOUT_MS: int(5000),
  /** The outbox retries later, so in-call retries stay few. */
  POSTHOG_FETCH_RETRY_COUNT: int(1),
  POSTHOG_HTTP: posthogHttp,
});

/**
 * Sampling with a PostHog feature flag, evaluated locally in ingest (docs/SAMPLING.md). On when both
 * the project key and a personal/secret key are set.
 */
const sampling = z.object({
  /** Personal (`phx_…`) or project secret (`phs_…`) key: fetches the flag definitions for local evaluation. */
  POSTHOG_PERSONAL_API_KEY: z.optional(
    str().check(z.refine((k: string) => !k.startsWith('phc_'), 'must be a personal (phx_) or project secret (phs_) key, not the project key (phc_)')),
  ),
  /** The flag that picks sampled distinct ids. */
  TALLY_SAMPLING_FLAG_KEY: z._default(str(1, 400), 'usage-sampling'),
  /** Event properties offered to the flag as person properties: `personProp=eventProp,prop` (besides `$set`/`$set_once`). */
  TALLY_SAMPLING_PERSON_PROPERTIES: z.pipe(
    z._default(z.string(), ''),
    z.transform((s: string, ctx) => {
      try {
        return parsePersonPropertyMapping(s);
      } catch {
        ctx.issues.push({ code: 'custom', message: 'comma-separated personProperty=eventProperty pairs or property names', input: s });
        return parsePersonPropertyMapping('');
      }
    }),
  ),
  /**
   * Bound of PostHog work on the request path: the raw capture of sampled events, each definitions
   * request, and (once per cold start) the wait for the first definitions.
   */
  TALLY_SAMPLING_TIMEOUT_MS: num(1000, 1, 10_000),
  /** How often the flag definitions are refreshed in the background (posthog-node polls every 30 s by default). */
  TALLY_SAMPLING_POLL_SECONDS: num(30, 1, 3600, false),
  /** Bound of one forwarded flag request (`/flags`, `/flags/definitions`, `/decide`). */
  TALLY_FLAGS_PROXY_TIMEOUT_MS: num(5000, 1, 25_000),
});

/** PostHog as ingest sees it: the project key (raw sampled events, flag routes) and the host. */
const ingestPosthog = z.object({
  POSTHOG_API_KEY: z.optional(str()),
  POSTHOG_HOST: z._default(z.url(), 'https://us.i.posthog.com'),
  POSTHOG_HTTP: posthogHttp,
});

export const ingestConfigSchema = z.extend(common, {
  ...apiKeys.shape,
  ...projects.shape,
  ...cors.shape,
  ...frontDoor.shape,
  ...ingestLimits.shape,
  ...ingestPosthog.shape,
  ...sampling.shape,
  TALLY_QUEUE_URL: z.url(),
  /** Largest SQS message body tally sends (SQS allows 1 MiB). */
  TALLY_MAX_MESSAGE_BYTES: int(1024 * 1024),
});
export type IngestConfig = z.infer<typeof ingestConfigSchema>;

/** How calls are counted: read by the aggregator, the roll-up and the queries alike. */
const counting = z.object({
  /** Aggregation window: one PostHog batch event per (event, user, window); counters move once per window. */
  TALLY_WINDOW_SECONDS: z._default(
    z.coerce.number().check(z.refine(isWindowLength, 'must divide 3600 and be 10, 12, 15, 20, 30 or a whole number of minutes (60, 120, …, 300, …, 3600)')),
    60,
  ),
  /** Time after a window ends before it is rolled up: covers batches in flight. Runs commit within half of it. */
  TALLY_GRACE_SECONDS: num(60, 2, 3600),
  /** Up to 3 event properties that split the counters and batch events (e.g. `route,status`). */
  TALLY_DIMENSIONS: z._default(
    z.pipe(
      csv,
      z.array(z.string().check(z.maxLength(64, 'dimension names are at most 64 characters'), z.regex(/^[A-Za-z0-9_$.:-]+$/, 'dimension names are letters, digits and _ $ . : -'))).check(z.maxLength(3, 'at most 3 dimensions')),
    ),
    [],
  ),
  /** Roll-up shards of the per-user counters (the roll-up's parallelism). */
  TALLY_SHARDS: num(8, 1, 64),
});

/** A claim may be taken over only once its run can no longer commit: half the grace after it started. */
const staleCoversCommit = z.refine<{ TALLY_CLAIM_STALE_SECONDS: number; TALLY_GRACE_SECONDS: number }>((c) => c.TALLY_CLAIM_STALE_SECONDS * 2 >= c.TALLY_GRACE_SECONDS, {
  message: 'TALLY_CLAIM_STALE_SECONDS must be at least half of TALLY_GRACE_SECONDS (a run may commit until then)',
  path: ['TALLY_CLAIM_STALE_SECONDS'],
});

export const aggregatorConfigSchema = z
  .extend(common, {
    ...posthog.shape,
    ...counting.shape,
    TALLY_TABLE_NAME: str(),
    /**
     * A claim older than this belongs to a run that can no longer commit: at least half the grace (a run
     * commits within it), and below the queue's visibility timeout so a redelivered message can take it over.
     */
    TALLY_CLAIM_STALE_SECONDS: int(120),
    /** Days minute and hour resolution is kept (DynamoDB TTL on hour items); days and months are kept. */
    TALLY_MINUTE_TTL_DAYS: int(14),
    /** Days a message id and its batch are remembered for deduplication: longer than the queue's retention. */
    TALLY_DEDUPE_TTL_DAYS: int(15),
    /** Parallel DynamoDB requests per aggregator run and per roll-up shard. */
    TALLY_DYNAMODB_CONCURRENCY: int(32),
  })
  .check(staleCoversCommit);
export type AggregatorConfig = z.infer<typeof aggregatorConfigSchema>;

export const queryConfigSchema = z.extend(common, {
  ...apiKeys.shape,
  ...counting.shape,
  ...cors.shape,
  TALLY_TABLE_NAME: str(),
});
export type QueryConfig = z.infer<typeof queryConfigSchema>;

/** Thrown at init when the environment is wrong; names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function parse<S extends z.ZodMiniType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  // TALLY_API_KEY (one key) is accepted as a shorthand for TALLY_API_KEYS.
  const input = { ...env };
  if (input.TALLY_API_KEYS === undefined && input.TALLY_API_KEY !== undefined) input.TALLY_API_KEYS = input.TALLY_API_KEY;
  for (const k of Object.keys(input)) if (input[k] === '') delete input[k];
  const r = z.safeParse(schema, input);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  return r.data;
}

export const loadIngestConfig = (env: Record<string, string | undefined> = process.env): IngestConfig =>
  parse(ingestConfigSchema, env);
export const loadAggregatorConfig = (env: Record<string, string | undefined> = process.env): AggregatorConfig =>
  parse(aggregatorConfigSchema, env);
export const loadQueryConfig = (env: Record<string, string | undefined> = process.env): QueryConfig =>
  parse(queryConfigSchema, env);
export const loadSecretsConfig = (env: Record<string, string | undefined> = process.env): SecretsConfig =>
  parse(secretsConfigSchema, env);

/** `npm start`: the whole pipeline on one machine. */
export const localConfigSchema = z
  .extend(posthog, {
  ...sampling.shape,
  ...counting.shape,
  ...cors.shape,
  ...ingestLimits.shape,
  ...frontDoor.shape,
  /** `off` turns sampling off locally (it is on by default, against the local flag definitions or PostHog). */
  TALLY_SAMPLING: z._default(z.enum(['on', 'off']), 'on'),
  /** Flag definitions served locally when no PostHog keys are set (same shape as PostHog's `/flags/definitions`). */
  TALLY_FLAGS_FILE: z._default(str(), 'local/flags-definitions.json'),
  PORT: num(3000, 0, 65535),
  /** The key local clients present; made and kept in the data directory when unset. */
  TALLY_API_KEY: z.optional(z.string().check(z.minLength(8, 'must be at least 8 characters'))),
  /** Master secret of client tokens; made and kept in the data directory when unset. */
  TALLY_TOKEN_SECRET: z.optional(z.string().check(z.minLength(32, 'must be at least 32 characters'))),
  /** SQS batching window of the local poller, like the event source mapping's. */
  TALLY_BATCH_WINDOW_SECONDS: num(1, 0, 300, false),
  TALLY_BATCH_SIZE: num(1000, 1, 10_000),
  /** When a claim is taken over locally: at least half the grace (a run may commit until then). */
  TALLY_CLAIM_STALE_SECONDS: num(30, 1, 3600),
  /** Where DynamoDB and SQS data and the local PostHog JSONL live; a restart loses nothing. */
  TALLY_DATA_DIR: z._default(str(), '.tally'),
  })
  .check(staleCoversCommit);
export type LocalConfig = z.infer<typeof localConfigSchema>;
export const loadLocalConfig = (env: Record<string, string | undefined> = process.env): LocalConfig => parse(localConfigSchema, env);
