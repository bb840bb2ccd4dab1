/**
 * Secrets at runtime, never in the CloudFormation template or the bundle.
 *
 * The stack gives each function `<NAME>_SECRET_ARN` variables (for example `TALLY_API_KEYS_SECRET_ARN`,
 * `POSTHOG_API_KEY_SECRET_ARN`) and IAM permission to read exactly those secrets. Once per cold start,
 * before configuration is loaded, the handler calls `resolveSecretEnv()`, which fetches each secret and
 * sets `<NAME>` in the environment, so `src/config.ts` reads it like any other variable.
 *
 * - A variable that is already set wins: the local stack and tests set `TALLY_API_KEYS` directly and
 *   never touch Secrets Manager.
 * - The secret is either a plain string (`phc_…`, or `key1,key2`) or a JSON object with a field named
 *   `<NAME>` or `value` (so one JSON secret can hold several values).
 * - Nothing here logs or puts a secret value in an error message.
 */
import { envCredentials, SigV4, type AwsCredentials } from './aws/sigv4';

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
  /** Default `https://secretsmanager.<region>.amazonaws.com`. */
  endpoint?: string;
  credentials?: AwsCredentials | (() => AwsCredentials);
  timeoutMs?: number;
}

/**
 * GetSecretValue over Secrets Manager's JSON protocol, signed with SigV4 by node:crypto: the AWS SDK
 * client it replaces was ~290 KB of every Lambda bundle, for one call per cold start. An error answer
 * becomes an Error named after AWS's error type (AccessDeniedException, ResourceNotFoundException, …).
 */
export function awsSecretFetcher(o: AwsSecretFetcherOptions = {}): SecretFetcher {
  const region = o.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const url = new URL(o.endpoint ?? `https://secretsmanager.${region}.amazonaws.com/`);
  const signer = new SigV4(region, 'secretsmanager');
  return async (secretId) => {
    const creds = typeof o.credentials === 'function' ? o.credentials() : (o.credentials ?? envCredentials());
    const body = JSON.stringify({ SecretId: secretId });
    const headers = signer.sign(creds, url.host, url.pathname, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' }, body);
    const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      /* an error page: described below by its status */
    }
    if (!res.ok) {
      const type = String(json.__type ?? `HTTP ${res.status}`).split('#').pop()!;
      const err = new Error(String(json.message ?? json.Message ?? `GetSecretValue answered ${res.status}`));
      err.name = type;
      throw err;
    }
    return { SecretString: typeof json.SecretString === 'string' ? json.SecretString : undefined };
  };
}

let defaultFetcher: SecretFetcher | undefined;

/**
 * For every `<NAME>_SECRET_ARN` whose `<NAME>` is unset, fetch the secret and set `env[NAME]`.
 * Fetches run in parallel; the first failure rejects with a `SecretResolutionError` naming the variable.
 * Safe to call more than once: resolved variables are skipped.
 */
export async function resolveSecretEnv(
  env: Record<string, string | undefined> = process.env,
  fetchSecret?: SecretFetcher,
): Promise<void> {
  const pending = pendingSecrets(env);
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
