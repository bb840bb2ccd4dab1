/**
 * Cold-start helper for Lambda entry points: secrets are resolved (src/secrets.ts, {@link SecretEnv}) and
 * the handler built by `init` once, on the first invocation, within that invocation's deadline; a failure
 * of a required secret or of `init` is retried on the next invocation instead of sticking to the warm
 * environment. Optional secrets (for example the PostHog keys of ingest's sampling) that could not be read
 * are tried again later, at most once a minute; when one resolves, `init` runs again so the new handler
 * uses it.
 *
 * @example
 * ```ts
 * // aggregator: counting never waits for PostHog's secret; batch events wait in the outbox until it resolves.
 * export const handler = lazy(() => buildAggregator(loadAggregatorConfig()), { optionalSecrets: ['POSTHOG_API_KEY'], log });
 * ```
 */
import type { Context } from 'aws-lambda';
import { SecretEnv, type SecretEnvOptions } from '../src/secrets';
import { invocationDeadline, withDeadline } from '../src/util/deadline';

export interface LazyOptions extends Pick<SecretEnvOptions, 'optionalTimeoutMs' | 'retryOptionalAfterMs' | 'fetchSecret'> {
  /** Secret variables the function works without (src/secrets.ts). */
  optionalSecrets?: readonly string[];
  /** Where an optional secret's failure is reported (names the variable, never a value). */
  log?: (message: string, error: unknown) => void;
  /** The environment secrets are resolved into. */
  env?: Record<string, string | undefined>;
}

/** Time kept free at the end of the first invocation: secrets resolve within its deadline minus this. */
const INIT_RESERVE_MS = 1000;

export function lazy<A extends unknown[], R>(init: () => ((...args: A) => Promise<R>) | Promise<(...args: A) => Promise<R>>, o: LazyOptions = {}): (...args: A) => Promise<R> {
  const secrets = new SecretEnv(o.env ?? process.env, { optional: o.optionalSecrets, log: o.log, optionalTimeoutMs: o.optionalTimeoutMs, retryOptionalAfterMs: o.retryOptionalAfterMs, fetchSecret: o.fetchSecret });
  let ready: Promise<(...args: A) => Promise<R>> | undefined;
  let first = true;
  return async (...args) => {
    const deadline = invocationDeadline(args[1] as Partial<Context> | undefined, INIT_RESERVE_MS);
    let handler: (...args: A) => Promise<R>;
    try {
      ready ??= withDeadline(deadline, async () => {
        await secrets.resolveRequired();
        await secrets.refreshOptional();
        first = true;
        return init();
      });
      handler = await ready;
    } catch (err) {
      // An init failure must not stick to the warm environment.
      ready = undefined;
      throw err;
    }
    if (!first && secrets.optionalDue() && (await withDeadline(deadline, () => secrets.refreshOptional()))) {
      // An optional secret resolved since: build the handler again so it uses it (keep the old one if that fails).
      try {
        const next = await init();
        ready = Promise.resolve(next);
        handler = next;
      } catch (err) {
        o.log?.('rebuilding the handler after an optional secret resolved failed; keeping the previous one', err instanceof Error ? err.message : String(err));
      }
    }
    first = false;
    return handler(...args);
  };
}
