/**
 * The deadline of the work in progress (a Lambda invocation, a local run), carried through every
 * async call made inside it with `AsyncLocalStorage`, so each network client can bound its attempts,
 * timeouts and retries by what is left, without a deadline parameter on every interface in between.
 *
 * A handler sets it once from `context.getRemainingTimeInMillis()` minus the time it keeps for
 * answering; clients read {@link remainingMs} before each attempt. Outside {@link withDeadline}
 * there is no deadline: `remainingMs()` is `Infinity`.
 *
 * @example
 * ```ts
 * await withDeadline(Date.now() + context.getRemainingTimeInMillis() - 500, () => handle(event));
 * // inside any client:
 * const timeout = Math.min(perAttemptTimeoutMs, remainingMs());
 * if (timeout <= 0) throw new DeadlineExceededError();
 * ```
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const store = new AsyncLocalStorage<number>();

/** Work that would outlive the current deadline, refused or cut short. */
export class DeadlineExceededError extends Error {
  constructor(message = 'deadline exceeded') {
    super(message);
    this.name = 'DeadlineExceededError';
  }
}

/**
 * Runs `fn` with `deadline` (epoch ms) as the current deadline. A deadline already set and earlier
 * is kept: nested work never gets more time than its caller.
 */
export function withDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  const outer = store.getStore();
  return store.run(outer !== undefined && outer < deadline ? outer : deadline, fn);
}

/** The current deadline, epoch ms, or `undefined` outside {@link withDeadline}. */
export function currentDeadline(): number | undefined {
  return store.getStore();
}

/** Milliseconds left before the current deadline (≤ 0 once passed); `Infinity` without one. */
export function remainingMs(now = Date.now()): number {
  const d = store.getStore();
  return d === undefined ? Infinity : d - now;
}

/**
 * The timeout for one attempt: `perAttemptMs`, shortened to what is left before the deadline.
 * Throws {@link DeadlineExceededError} when less than `minMs` is left (no attempt worth starting).
 */
export function attemptTimeoutMs(perAttemptMs: number, minMs = 1): number {
  const left = remainingMs();
  if (left < minMs) throw new DeadlineExceededError(`deadline exceeded: ${Math.max(0, Math.round(left))} ms left`);
  return Math.min(perAttemptMs, left);
}

/** The deadline (epoch ms) of an invocation: its remaining time minus `reserveMs`; none without a Lambda context. */
export function invocationDeadline(context: { getRemainingTimeInMillis?: () => number } | undefined, reserveMs: number, now = Date.now()): number {
  return typeof context?.getRemainingTimeInMillis === 'function' ? now + context.getRemainingTimeInMillis() - reserveMs : Infinity;
}
