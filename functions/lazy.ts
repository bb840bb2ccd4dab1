/**
 * Cold-start helper for Lambda entry points: secrets are resolved and config validated once, on the
 * first invocation (CommonJS bundles have no top-level await); a failure is retried on the next one.
 */
import { resolveSecretEnv } from '../src/secrets';

export function lazy<A extends unknown[], R>(init: () => ((...args: A) => Promise<R>) | Promise<(...args: A) => Promise<R>>): (...args: A) => Promise<R> {
  let ready: Promise<(...args: A) => Promise<R>> | undefined;
  return async (...args) => {
    ready ??= resolveSecretEnv(process.env).then(init);
    try {
      return await (await ready)(...args);
    } catch (err) {
      // An init failure must not stick to the warm environment.
      if (await ready.then(() => false, () => true)) ready = undefined;
      throw err;
    }
  };
}
