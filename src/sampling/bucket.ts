/**
 * PostHog's bucketing, synchronously: the first 15 hex digits of `sha1("<flag key>.<distinct id>")`
 * over 0xfffffffffffffff. posthog-node computes the same number with WebCrypto (asynchronous, ~10 µs);
 * node:crypto's one-shot hash does it in about a microsecond, which keeps flag evaluation off the
 * request's CPU budget.
 *
 * Exactness: the 15 hex digits are the top 60 bits of the digest. `hi * 2^28 + lo` is the same integer,
 * rounded once to a double exactly as `parseInt(hex, 16)` rounds it, and 0xfffffffffffffff is the same
 * double (2^60) in both, so the quotient is bit-for-bit PostHog's. test/unit/sampling-bucket.test.ts
 * checks it against the reference formula, test/integration/sampling.test.ts against posthog-node.
 */
import * as crypto from 'node:crypto';

/** PostHog's LONG_SCALE. */
export const LONG_SCALE = 0xfffffffffffffff;
const TWO_POW_28 = 268_435_456;

type OneShotHash = (algorithm: string, data: string, outputEncoding: 'buffer') => Buffer;
// crypto.hash (Node ≥ 21.7) is about twice as fast as createHash for short inputs.
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;
const sha1: (s: string) => Buffer = oneShot ? (s) => oneShot('sha1', s, 'buffer') : (s) => crypto.createHash('sha1').update(s).digest();

/** The bucket in [0, 1] of `value` for `flagKey`: PostHog's `getFeatureFlagHash(key, value)`. */
export function posthogBucket(flagKey: string, value: string): number {
  const d = sha1(`${flagKey}.${value}`);
  const hi = d.readUInt32BE(0);
  const lo = d.readUInt32BE(4) >>> 4;
  return (hi * TWO_POW_28 + lo) / LONG_SCALE;
}

/** True when a bucket falls inside a rollout percentage, as PostHog decides it (`hash > pct / 100` is out). */
export function inRollout(bucket: number, rolloutPercentage: number | null | undefined): boolean {
  return rolloutPercentage == null || !(bucket > rolloutPercentage / 100);
}
