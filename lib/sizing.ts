/**
 * Memory, timeouts and the numbers derived from them, chosen deliberately. Each value carries its
 * reason; docs/DEPLOY.md repeats them. Lambda gives CPU in proportion to memory (1,769 MB = one vCPU)
 * and bills GB-seconds, so memory buys latency for CPU-bound work and only costs for I/O waits.
 */

export interface FunctionSizing {
  memoryMb: number;
  timeoutSeconds: number;
  why: string;
}

export const INGEST: FunctionSizing = {
  memoryMb: 512,
  timeoutSeconds: 10,
  why:
    'On the request path and CPU-bound (gunzip, JSON parse, schema validation, re-serialisation) plus one SQS send. ' +
    '512 MB (~0.29 vCPU) halves the CPU part of latency and cold-start init against 256 MB for the same cost per ' +
    'CPU-millisecond. 10 s: a normal request takes tens of ms; every SQS, Secrets Manager and PostHog call is ' +
    'bounded by the invocation deadline (remaining time minus 1 s), so a hanging dependency gets tally\'s own 503 ' +
    'JSON by about 9 s, far below the 30 s API Gateway integration timeout, never a timed-out function. ' +
    'With sampling on, a request with sampled events also waits for their raw capture, at most samplingTimeoutMs ' +
    '(≤ 3 s; on a cold start once more for the first flag definitions), and a proxied flag request at most 5 s: ' +
    'both fit inside the 10 s.',
};

/** Bound of one proxied flag request (`/flags`, `/flags/definitions`, `/decide`) in ingest. */
export const FLAG_PROXY_TIMEOUT_MS = 5000;
/** Flag definitions refresh interval in ingest (posthog-node's default). */
export const SAMPLING_POLL_SECONDS = 30;

export const AGGREGATOR: FunctionSizing = {
  memoryMb: 1024,
  timeoutSeconds: 60,
  why:
    'Parses up to 10,000 messages (≤ 6 MB event) per batch, claims each (32 DynamoDB requests in flight), aggregates ' +
    'in memory and writes a few deltas. 1 GB leaves heap headroom for a 6 MB event expanded into objects and ' +
    '~0.58 vCPU for request signing. A run commits within half the grace (30 s by default) or aborts itself; 60 s ' +
    'covers that with room, and the queue visibility timeout is derived from it.',
};

export const QUERY: FunctionSizing = {
  memoryMb: 256,
  timeoutSeconds: 10,
  why:
    'A few GetItem/Query calls and a small JSON answer: I/O-bound, so more memory would only cost more. 10 s bounds a ' +
    'long paginated query below the API Gateway 30 s limit.',
};

export const ROLLUP: FunctionSizing = {
  memoryMb: 1769,
  timeoutSeconds: 60,
  why:
    'Every minute: merges the closed windows\' deltas (up to 32 MB compressed per unit, expanded in memory), applies ' +
    'one guarded update per counter item (32 in flight per shard, 4 shards at once), then delivers the outbox to ' +
    'PostHog with bounded requests. 1,769 MB is one vCPU: signing ~3,300 counter writes/s (100,000 active users per ' +
    'minute) takes about 0.64 vCPU (npm run bench), more than a 1 GB function has. 60 s: one pass per schedule ' +
    'tick; the shard lease (60 s) lets the next tick resume a pass that ran out of time.',
};

/** Minutes between roll-up runs (EventBridge's finest rate). */
export const ROLLUP_SCHEDULE_MINUTES = 1;

/** posthog-node settings the functions get; bounded so a PostHog outage cannot eat the aggregator timeout. */
export const POSTHOG_REQUEST_TIMEOUT_MS = 5000;
export const POSTHOG_FETCH_RETRY_COUNT = 1;
/** posthog-node waits this long between retries. */
export const POSTHOG_RETRY_DELAY_MS = 3000;

/** Parallel DynamoDB requests per aggregator run and roll-up shard (matches src/config.ts default). */
export const DYNAMODB_CONCURRENCY = 32;

/** Largest SQS message (1 MiB, the SQS maximum); ingest packs events up to this size. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const QUEUE_RETENTION_DAYS = 4;
export const DLQ_RETENTION_DAYS = 14;
/** Deliveries before a message moves to the DLQ: rides out a few minutes of DynamoDB or code trouble. */
export const MAX_RECEIVE_COUNT = 5;

/**
 * Visibility timeout: AWS asks for at least six times the function timeout, so Lambda can retry a batch
 * that was throttled; messages are already in flight while the batching window fills, so it is added on top.
 */
export function visibilityTimeoutSeconds(batchWindowSeconds: number): number {
  return 6 * AGGREGATOR.timeoutSeconds + batchWindowSeconds;
}

/**
 * A claim older than this belongs to a run that can no longer commit: beyond the aggregator's timeout
 * (and so beyond half the grace), and below the visibility timeout so a redelivered message can take it over.
 */
export const CLAIM_STALE_SECONDS = 2 * AGGREGATOR.timeoutSeconds;

/**
 * Message ids are remembered longer than a message can live. A message keeps its original enqueue time in
 * the DLQ (so it expires there 14 days after it was sent), and a redrive puts it back in the queue for up to
 * another 4 days: 14 + 4, plus a day of margin.
 */
export const DEDUPE_TTL_DAYS = DLQ_RETENTION_DAYS + QUEUE_RETENTION_DAYS + 1;
