/**
 * When to try a failed batch again: exponential backoff with full jitter, or what the server asked
 * for in `Retry-After`.
 */

/** Longest `Retry-After` honoured: a misconfigured proxy asking for a day is not obeyed. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Full jitter: a uniform draw in [0, min(maxMs, baseMs × 2^(attempt − 1))], so clients that failed
 * together do not retry together.
 *
 * @example
 * ```ts
 * backoffDelay(1, 200, 30_000); // 0–200 ms
 * backoffDelay(5, 200, 30_000); // 0–3,200 ms
 * ```
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(random() * ceiling);
}

/**
 * A `Retry-After` header in ms: delta-seconds or an HTTP date; undefined when absent or unreadable.
 *
 * @example
 * ```ts
 * parseRetryAfter('2'); // 2000
 * parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', Date.parse('Wed, 21 Oct 2026 07:27:58 GMT')); // 2000
 * ```
 */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const v = header.trim();
  if (v === '') return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isFinite(at)) return undefined;
    ms = at - now;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}
