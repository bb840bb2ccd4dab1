/**
 * All configuration is read and validated here, once, from environment variables.
 * Each function asks for the slice it needs; a missing or malformed variable fails fast at init
 * with a message naming it.
 */
import { z } from 'zod';
import { parsePersonPropertyMapping } from './sampling/person';

const csv = z
  .string()
  .transform((s) => s.split(',').map((k) => k.trim()).filter((k) => k.length > 0));
const int = (def: number) => z.coerce.number().int().nonnegative().default(def);

/** Variables every function understands. */
const common = z.object({
  AWS_REGION: z.string().default('us-east-1'),
  /** Override endpoints (the local stack and tests point these at dynalite/fauxqs). */
  TALLY_SQS_ENDPOINT: z.url().optional(),
  TALLY_DYNAMODB_ENDPOINT: z.url().optional(),
});

const apiKeys = z.object({
  /** Keys clients present (comma-separated, so a key can be rotated without downtime). */
  TALLY_API_KEYS: csv.pipe(z.array(z.string().min(8, 'API keys must be at least 8 characters')).min(1)),
});

const posthog = z.object({
  /** PostHog project key (phc_…). Without it, PostHog events are printed (local) or fail the send. */
  POSTHOG_API_KEY: z.string().min(1).optional(),
  POSTHOG_HOST: z.url().default('https://us.i.posthog.com'),
  /** Bounded on purpose: posthog-node's defaults (10 s × 3 retries × 3 s) can hold an invocation ~49 s. */
  POSTHOG_REQUEST_TIMEOUT_MS: int(5000),
  /** The outbox retries later, so in-call retries stay few. */
  POSTHOG_FETCH_RETRY_COUNT: int(1),
});

/**
 * Sampling with a PostHog feature flag, evaluated locally in ingest (docs/SAMPLING.md). On when both
 * the project key and a personal/secret key are set.
 */
const sampling = z.object({
  /** Personal (`phx_…`) or project secret (`phs_…`) key: fetches the flag definitions for local evaluation. */
  POSTHOG_PERSONAL_API_KEY: z
    .string()
    .min(1)
    .refine((k) => !k.startsWith('phc_'), 'must be a personal (phx_) or project secret (phs_) key, not the project key (phc_)')
    .optional(),
  /** The flag that picks sampled distinct ids. */
  TALLY_SAMPLING_FLAG_KEY: z.string().min(1).max(400).default('usage-sampling'),
  /** Event properties offered to the flag as person properties: `personProp=eventProp,prop` (besides `$set`/`$set_once`). */
  TALLY_SAMPLING_PERSON_PROPERTIES: z
    .string()
    .default('')
    .refine((s) => {
      try {
        parsePersonPropertyMapping(s);
        return true;
      } catch {
        return false;
      }
    }, 'comma-separated personProperty=eventProperty pairs or property names')
    .transform((s) => parsePersonPropertyMapping(s)),
  /**
   * Bound of PostHog work on the request path: the raw capture of sampled events, each definitions
   * request, and (once per cold start) the wait for the first definitions.
   */
  TALLY_SAMPLING_TIMEOUT_MS: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** How often the flag definitions are refreshed in the background (posthog-node polls every 30 s by default). */
  TALLY_SAMPLING_POLL_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  /** Bound of one forwarded flag request (`/flags`, `/flags/definitions`, `/decide`). */
  TALLY_FLAGS_PROXY_TIMEOUT_MS: z.coerce.number().int().min(1).max(25_000).default(5000),
});

/** PostHog as ingest sees it: the project key (raw sampled events, flag routes) and the host. */
const ingestPosthog = z.object({
  POSTHOG_API_KEY: z.string().min(1).optional(),
  POSTHOG_HOST: z.url().default('https://us.i.posthog.com'),
});

export const ingestConfigSchema = common.extend(apiKeys.shape).extend(ingestPosthog.shape).extend(sampling.shape).extend({
  TALLY_QUEUE_URL: z.url(),
  /** Largest SQS message body tally sends (SQS allows 1 MiB). */
  TALLY_MAX_MESSAGE_BYTES: int(1024 * 1024),
});
export type IngestConfig = z.infer<typeof ingestConfigSchema>;

export const aggregatorConfigSchema = common.extend(posthog.shape).extend({
  TALLY_TABLE_NAME: z.string().min(1),
  /**
   * A claim older than this belongs to a run that can no longer be alive: at least the aggregator's
   * timeout, and below the queue's visibility timeout so a redelivered message can recover it.
   */
  TALLY_CLAIM_STALE_SECONDS: int(120),
  /** Days minute windows are kept (DynamoDB TTL); hour and day windows are kept. */
  TALLY_MINUTE_TTL_DAYS: int(14),
  /** Days a message id is remembered for deduplication: longer than the queue's retention. */
  TALLY_DEDUPE_TTL_DAYS: int(15),
  /** Parallel DynamoDB requests per aggregator run. */
  TALLY_DYNAMODB_CONCURRENCY: int(32),
});
export type AggregatorConfig = z.infer<typeof aggregatorConfigSchema>;

export const queryConfigSchema = common.extend(apiKeys.shape).extend({
  TALLY_TABLE_NAME: z.string().min(1),
});
export type QueryConfig = z.infer<typeof queryConfigSchema>;

/** Thrown at init when the environment is wrong; names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function parse<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  // TALLY_API_KEY (one key) is accepted as a shorthand for TALLY_API_KEYS.
  const input = { ...env };
  if (input.TALLY_API_KEYS === undefined && input.TALLY_API_KEY !== undefined) input.TALLY_API_KEYS = input.TALLY_API_KEY;
  for (const k of Object.keys(input)) if (input[k] === '') delete input[k];
  const r = schema.safeParse(input);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  return r.data;
}

export const loadIngestConfig = (env: Record<string, string | undefined> = process.env): IngestConfig =>
  parse(ingestConfigSchema, env);
export const loadAggregatorConfig = (env: Record<string, string | undefined> = process.env): AggregatorConfig =>
  parse(aggregatorConfigSchema, env);
export const loadQueryConfig = (env: Record<string, string | undefined> = process.env): QueryConfig =>
  parse(queryConfigSchema, env);

/** `npm start`: the whole pipeline on one machine. */
export const localConfigSchema = posthog.extend(sampling.shape).extend({
  /** `off` turns sampling off locally (it is on by default, against the local flag definitions or PostHog). */
  TALLY_SAMPLING: z.enum(['on', 'off']).default('on'),
  /** Flag definitions served locally when no PostHog keys are set (same shape as PostHog's `/flags/definitions`). */
  TALLY_FLAGS_FILE: z.string().min(1).default('local/flags-definitions.json'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** The key local clients present; made and kept in the data directory when unset. */
  TALLY_API_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
  /** SQS batching window of the local poller, like the event source mapping's. */
  TALLY_BATCH_WINDOW_SECONDS: z.coerce.number().min(0).max(300).default(1),
  TALLY_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** Where DynamoDB and SQS data and the local PostHog JSONL live; a restart loses nothing. */
  TALLY_DATA_DIR: z.string().min(1).default('.tally'),
});
export type LocalConfig = z.infer<typeof localConfigSchema>;
export const loadLocalConfig = (env: Record<string, string | undefined> = process.env): LocalConfig => parse(localConfigSchema, env);
