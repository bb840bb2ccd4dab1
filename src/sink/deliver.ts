/**
 * The one way tally hands events to posthog-node and waits for PostHog's answer: the batch-event sink
 * (./posthog.ts) and the raw capture of sampled events (src/sampling/capture.ts) both deliver through it.
 *
 * - One short-lived client per delivery: events of a failed delivery cannot linger in a client queue and
 *   go out later behind the caller's back (the outbox resends them, with the same uuids).
 * - Events go out in requests of `maxBatchSize`, each flushed and awaited; `flush()` rejects on failure,
 *   and the `flush` event counts what PostHog took.
 * - **Bounded time**: the delivery never outlives the invocation's deadline (src/util/deadline.ts) nor the
 *   caller's `timeoutMs`: each request's timeout is capped by what is left, posthog-node gets only as many
 *   retries as can finish in it, and the whole delivery races a timer of that length. posthog-node's defaults
 *   (10 s × 3 retries, 3 s apart) could otherwise hold a Lambda ~49 s against a hanging host.
 */
import { PostHog } from 'posthog-node';
import { remainingMs } from '../util/deadline';
import { nodeHttpFetch } from './http-fetch';

type PostHogOptions = NonNullable<ConstructorParameters<typeof PostHog>[1]>;
type Fetch = NonNullable<PostHogOptions['fetch']>;

/** One event as posthog-node's `capture` takes it. */
export type CaptureMessage = Parameters<PostHog['capture']>[0];

export interface DeliveryOptions {
  apiKey: string;
  host: string;
  /** Per request, before the cap by the time left. */
  requestTimeoutMs: number;
  /** Retries per request, before the cap by the time left. */
  fetchRetryCount: number;
  fetchRetryDelayMs: number;
  /** Events per HTTP request. */
  maxBatchSize: number;
  /** Longest the whole delivery may take (also capped by the invocation's deadline). */
  timeoutMs?: number;
  /** Default: {@link nodeHttpFetch} (./http-fetch.ts); `globalThis.fetch` is posthog-node's own choice. */
  fetch?: Fetch;
}

export interface DeliveryOutcome {
  /** Events PostHog took. */
  sent: number;
  /** Why the rest were not delivered. */
  reason?: string;
}

/** Retries that fit in `budgetMs` with attempts of `timeoutMs` and `delayMs` between them (at most `max`). */
export function retriesThatFit(budgetMs: number, timeoutMs: number, delayMs: number, max: number): number {
  let r = max;
  while (r > 0 && (r + 1) * timeoutMs + r * delayMs > budgetMs) r--;
  return r;
}

/** Delivers `messages`, in order; resolves with how many PostHog took (never rejects). */
export async function deliverWithPostHogNode(messages: readonly CaptureMessage[], o: DeliveryOptions): Promise<DeliveryOutcome> {
  const n = messages.length;
  if (n === 0) return { sent: 0 };
  const budget = Math.min(o.timeoutMs ?? Infinity, remainingMs());
  if (!(budget > 0)) return { sent: 0, reason: 'no time left in the invocation' };
  const requestTimeout = Math.max(1, Math.floor(Math.min(o.requestTimeoutMs, budget)));
  const retries = retriesThatFit(budget, requestTimeout, o.fetchRetryDelayMs, o.fetchRetryCount);
  const client = new PostHog(o.apiKey, {
    host: o.host,
    flushAt: o.maxBatchSize + 1, // never flush in the background: each chunk is flushed and awaited below
    flushInterval: 0,
    maxQueueSize: o.maxBatchSize + 1,
    maxBatchSize: o.maxBatchSize,
    requestTimeout,
    fetchRetryCount: retries,
    fetchRetryDelay: o.fetchRetryDelayMs,
    enableLocalEvaluation: false,
    enableExceptionAutocapture: false,
    fetch: o.fetch ?? nodeHttpFetch,
  });
  let sent = 0;
  let lastError: unknown;
  client.on('flush', (msgs: unknown) => {
    sent += Array.isArray(msgs) ? msgs.length : 0;
  });
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  const work = (async () => {
    for (let i = 0; i < n; i += o.maxBatchSize) {
      const chunk = messages.slice(i, i + o.maxBatchSize);
      for (const m of chunk) client.capture(m);
      // capture() enqueues after a promise chain: let it settle, then flush until the chunk is taken.
      const target = i + chunk.length;
      for (let round = 0; sent < target && round < 5; round++) {
        await new Promise((r) => setImmediate(r));
        await client.flush().catch((err: unknown) => {
          lastError = err;
        });
        if (lastError !== undefined && sent < target) return;
      }
      if (sent < target) return;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const expired = Number.isFinite(budget) ? new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), budget))) : new Promise<never>(() => undefined);
  const outcome = await Promise.race([work.then(() => 'done' as const), expired]);
  clearTimeout(timer);
  if (sent >= n) return { sent: n };
  const reason = outcome === 'timeout' ? `no answer within ${Math.round(budget)} ms` : lastError instanceof Error ? lastError.message : String(lastError ?? 'unknown');
  return { sent, reason };
}
