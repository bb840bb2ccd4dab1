/**
 * The invocation's deadline (src/util/deadline.ts) for AWS SDK v3 calls: `client.send(command,
 * sdkSendOptions())` aborts the call, retries included, when the deadline passes, and refuses to start
 * one after it, as src/aws/json-client.ts does for tally's own clients.
 */
import { DeadlineExceededError, remainingMs } from '../util/deadline';

/** `{ abortSignal }` firing at the current deadline; `{}` without one. Throws once it has passed. */
export function sdkSendOptions(): { abortSignal?: AbortSignal } {
  const left = remainingMs();
  if (left === Infinity) return {};
  if (left < 1) throw new DeadlineExceededError(`deadline exceeded: ${Math.max(0, Math.round(left))} ms left`);
  return { abortSignal: AbortSignal.timeout(Math.ceil(left)) };
}
