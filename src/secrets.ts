/**
 * Secrets at runtime, never in the CloudFormation template or the bundle.
 *
 * The stack gives each function `<NAME>_SECRET_ARN` variables (for example `TALLY_API_KEYS_SECRET_ARN`,
 * `POSTHOG_API_KEY_SECRET_ARN`) and IAM permission to read exactly those secrets. Once per cold start,
 * before configuration is loaded, the entry point (functions/lazy.ts, through {@link SecretEnv}) fetches
 * each secret and sets `<NAME>` in the environment, so `src/config.ts` reads it like any other variable.
 * Secrets a function can work without are *optional*: a failure is logged and retried later.
 *
 * - A variable that is already set wins: the local stack and tests set `TALLY_API_KEYS` directly and
 *   never touch Secrets Manager.
 * - The secret is either a plain string (`phc_…`, or `key1,key2`) or a JSON object with a field named
 *   `<NAME>` or `value` (so one JSON secret can hold several values).
 * - Nothing here logs or puts a secret value in an error message.
 */
import { AwsJsonClient } from './aws/json-client';
import type { AwsCredentials } from './aws/sigv4';
import { loadSecretsConfig } from './config';
import { endpointFor } from './runtime/endpoints';
import { withDeadline } from './util/deadline';

const SUFFIX = '_SECRET_ARN';

/** A secret could not be resolved; names the variable and the secret, never the value. */
export class SecretResolutionError extends Error {
  constructor(
    readonly variable: string,
    readonly secretId: string,
    reason: string,
  ) {
    super(`cannot resolve ${variable} from secret ${secretId} (${variable}${SUFFIX}): ${reason}`);
    this.name = 'SecretResolutionError';
  }
}

/** The `<NAME>` → secret id pairs that still need fetching. */
export function pendingSecrets(env: Record<string, string | undefined>): Array<{ name: string; secretId: string }> {
  const out: Array<{ name: string; secretId: string }> = [];
  for (const [key, secretId] of Object.entries(env)) {
    if (!key.endsWith(SUFFIX) || key.length === SUFFIX.length) continue;
    if (secretId === undefined || secretId.trim() === '') continue;
    const name = key.slice(0, -SUFFIX.length);
    const current = env[name];
    if (current !== undefined && current !== '') continue;
    out.push({ name, secretId: secretId.trim() });
  }
  return out;
}

/** Picks the value out of a secret string: plain text, or JSON `{"<NAME>": "…"}` / `{"value": "…"}`. */
export function extractSecretValue(name: string, secretId: string, secretString: string): string {
  const text = secretString.trim();
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON after all (a key may legitimately start with "{"): use it as plain text.
      parsed = undefined;
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const record = parsed as Record<string, unknown>;
      const field = name in record ? name : 'value' in record ? 'value' : undefined;
      if (field === undefined) {
        throw new SecretResolutionError(name, secretId, `the secret is a JSON object without a "${name}" or "value" field`);
      }
      const v = record[field];
      if (typeof v !== 'string' || v.trim() === '') {
        throw new SecretResolutionError(name, secretId, `field "${field}" of the JSON secret is not a non-empty string`);
      }
      return v.trim();
    }
  }
  if (text === '') throw new SecretResolutionError(name, secretId, 'the secret string is empty');
  return text;
}

/** Reads one secret: what Secrets Manager's GetSecretValue answers (only `SecretString` is used). */
export type SecretFetcher = (secretId: string) => Promise<{ SecretString?: string }>;

export interface AwsSecretFetcherOptions {
  region?: string;
  /** Default: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, else the partition's endpoint. */
  endpoint?: string;
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** Per attempt (shortened to the invocation's deadline). */
  timeoutMs?: number;
  /** Attempts for network errors, timeouts, 5xx and throttling. */
  maxAttempts?: number;
  retryBaseMs?: number;
}

/**
 * GetSecretValue over Secrets Manager's JSON protocol through the same signed client as SQS and DynamoDB
 * (src/aws/json-client.ts): retries with backoff, a retry budget, clock-skew correction, the invocation's
 * deadline. The AWS SDK client it replaces was ~290 KB of every Lambda bundle, for one call per cold
 * start. An error answer becomes an error named after AWS's error type (AccessDeniedException,
 * ResourceNotFoundException, …).
 */
export function awsSecretFetcher(o: AwsSecretFetcherOptions = {}): SecretFetcher {
  const c = loadSecretsConfig(process.env);
  const region = o.region ?? c.AWS_REGION;
  const client = new AwsJsonClient({
    service: 'secretsmanager',
    region,
    contentType: 'application/x-amz-json-1.1',
    endpoint: o.endpoint ?? endpointFor('secretsmanager', c).endpoint,
    credentials: o.credentials,
    requestTimeoutMs: o.timeoutMs ?? 2000,
    maxAttempts: o.maxAttempts ?? 3,
    retryBaseMs: o.retryBaseMs ?? 100,
    maxSockets: 4,
  });
  return async (secretId) => {
    const json = await client.callWithRetries<Record<string, unknown>>('secretsmanager.GetSecretValue', JSON.stringify({ SecretId: secretId }));
    return { SecretString: typeof json.SecretString === 'string' ? json.SecretString : undefined };
  };
}

let defaultFetcher: SecretFetcher | undefined;

/**
 * For every `<NAME>_SECRET_ARN` whose `<NAME>` is unset (limited to `names` when given), fetch the secret
 * and set `env[NAME]`. Fetches run in parallel; the first failure rejects with a `SecretResolutionError`
 * naming the variable. Safe to call more than once: resolved variables are skipped.
 */
export async function resolveSecretEnv(
  env: Record<string, string | undefined> = process.env,
  fetchSecret?: SecretFetcher,
  names?: ReadonlySet<string>,
): Promise<void> {
  const pending = pendingSecrets(env).filter((p) => names === undefined || names.has(p.name));
  if (pending.length === 0) return;
  const get = fetchSecret ?? (defaultFetcher ??= awsSecretFetcher());
  const values = await Promise.all(
    pending.map(async ({ name, secretId }) => {
      let secretString: string | undefined;
      try {
        const out = await get(secretId);
        secretString = out.SecretString;
      } catch (err) {
        // The error names the problem (AccessDenied, ResourceNotFound) and never carries the value.
        const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        throw new SecretResolutionError(name, secretId, reason);
      }
      if (secretString === undefined) {
        throw new SecretResolutionError(name, secretId, 'the secret has no SecretString (binary secrets are not supported)');
      }
      return { name, value: extractSecretValue(name, secretId, secretString) };
    }),
  );
  // Assign only after every fetch succeeded, so a failure leaves the environment as it was.
  for (const { name, value } of values) env[name] = value;
}

export interface SecretEnvOptions {
  /**
   * Variables the function works without (ingest: the PostHog keys of sampling; the aggregator: the
   * PostHog project key, so counting never waits for it). A failure to read one is logged and retried
   * later; the others must resolve or the invocation fails (and the next one retries).
   */
  optional?: readonly string[];
  /** Least time between two attempts at an optional secret that failed. */
  retryOptionalAfterMs?: number;
  /** Bound of one attempt at the optional secrets (they never hold a request for long). */
  optionalTimeoutMs?: number;
  log?: (message: string, error: unknown) => void;
  fetchSecret?: SecretFetcher;
  now?: () => number;
}

export const secretEnvDefaults: { retryOptionalAfterMs: number; optionalTimeoutMs: number } = { retryOptionalAfterMs: 60_000, optionalTimeoutMs: 1000 };

/**
 * The secrets of one Lambda environment: the required ones resolved at cold start (a failure fails the
 * invocation, and the next one tries again), the optional ones tried too, and retried — at most once per
 * `retryOptionalAfterMs`, each try bounded by `optionalTimeoutMs` — until they resolve, instead of being
 * given up for the container's life. {@link SecretEnv.refreshOptional} says when one newly resolved, so the
 * caller can rebuild what depends on it (functions/lazy.ts does).
 */
export class SecretEnv {
  private readonly optional: ReadonlySet<string>;
  private readonly o: SecretEnvOptions & typeof secretEnvDefaults;
  private nextOptionalAttempt = 0;
  private inFlight: Promise<boolean> | undefined;

  constructor(
    private readonly env: Record<string, string | undefined> = process.env,
    opts: SecretEnvOptions = {},
  ) {
    this.o = { ...secretEnvDefaults, ...opts };
    this.optional = new Set(opts.optional ?? []);
  }

  /** Resolves every pending secret that is not optional; rejects with a {@link SecretResolutionError}. */
  async resolveRequired(): Promise<void> {
    const required = new Set(pendingSecrets(this.env).map((p) => p.name).filter((n) => !this.optional.has(n)));
    if (required.size > 0) await resolveSecretEnv(this.env, this.o.fetchSecret, required);
  }

  private settled = false;

  /** Optional secrets still unresolved. */
  get pendingOptional(): string[] {
    if (this.settled) return [];
    const names = pendingSecrets(this.env).map((p) => p.name).filter((n) => this.optional.has(n));
    // Resolved variables stay set: once none is pending, none will be (and the hot path stops looking).
    if (names.length === 0) this.settled = true;
    return names;
  }

  /** True while an optional secret is unresolved and its next try is due. */
  optionalDue(now = (this.o.now ?? Date.now)()): boolean {
    return !this.settled && now >= this.nextOptionalAttempt && this.pendingOptional.length > 0;
  }

  /**
   * Tries the unresolved optional secrets, unless the last try was less than `retryOptionalAfterMs` ago.
   * True when one of them is newly set. Never rejects.
   */
  refreshOptional(): Promise<boolean> {
    const names = this.pendingOptional;
    const now = (this.o.now ?? Date.now)();
    if (names.length === 0 || now < this.nextOptionalAttempt) return Promise.resolve(false);
    this.inFlight ??= (async () => {
      this.nextOptionalAttempt = now + this.o.retryOptionalAfterMs;
      try {
        // Each optional secret on its own, so one that fails does not keep another from resolving.
        const results = await Promise.all(
          names.map((name) =>
            withDeadline(Date.now() + this.o.optionalTimeoutMs, () => resolveSecretEnv(this.env, this.o.fetchSecret, new Set([name]))).then(
              () => true,
              (err: unknown) => {
                this.o.log?.(`optional secret ${name} could not be read; retrying in ${Math.round(this.o.retryOptionalAfterMs / 1000)} s`, err instanceof Error ? err.message : String(err));
                return false;
              },
            ),
          ),
        );
        return results.some(Boolean);
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }
}
