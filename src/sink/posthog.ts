/**
 * {@link PostHogSink} through posthog-node. Each `send` uses its own short-lived client, so events of
 * a failed send cannot linger in a client queue and go out later behind the outbox's back; `send`
 * resolves only when PostHog has answered 2xx for every event.
 *
 * Timeouts are set on purpose: posthog-node's defaults (10 s timeout, 3 retries 3 s apart) can hold a
 * Lambda ~49 s against a dead host. Here a dead host costs at most
 * `requestTimeoutMs × (retries + 1) + retryDelayMs × retries` per send, and the outbox retries later.
 */
import { PostHog } from 'posthog-node';
import type { PostHogEvent } from '../types';
import type { PostHogSink } from './types';

export interface PostHogSinkOptions {
  apiKey: string;
  host: string;
  requestTimeoutMs: number;
  fetchRetryCount: number;
  fetchRetryDelayMs: number;
  /**
   * Events per HTTP request. 5,000 batch events are ~2.3 MB of JSON (~0.3 MB gzipped), far under
   * PostHog's 20 MB `/batch` limit, and hold every (event, user) pair of a 10,000-message aggregator run
   * in the benchmark's traffic: one request per run (100 per 1M single calls; 400 at 1,000 per request).
   */
  maxBatchSize: number;
}

export const posthogSinkDefaults = { requestTimeoutMs: 5000, fetchRetryCount: 1, fetchRetryDelayMs: 500, maxBatchSize: 5000 } as const;

export class PostHogNodeSink implements PostHogSink {
  private readonly o: PostHogSinkOptions;

  constructor(opts: Partial<PostHogSinkOptions> & { apiKey: string; host: string }) {
    this.o = { ...posthogSinkDefaults, ...opts };
  }

  async send(events: PostHogEvent[]): Promise<void> {
    if (events.length === 0) return;
    const client = new PostHog(this.o.apiKey, {
      host: this.o.host,
      flushAt: this.o.maxBatchSize + 1, // never flush in the background: we flush each chunk, below
      flushInterval: 0,
      maxQueueSize: this.o.maxBatchSize + 1,
      maxBatchSize: this.o.maxBatchSize,
      requestTimeout: this.o.requestTimeoutMs,
      fetchRetryCount: this.o.fetchRetryCount,
      fetchRetryDelay: this.o.fetchRetryDelayMs,
      enableLocalEvaluation: false,
    });
    let flushed = 0;
    client.on('flush', (msgs: unknown) => {
      flushed += Array.isArray(msgs) ? msgs.length : 0;
    });
    client.on('error', () => {
      /* surfaced by flush() rejecting */
    });
    for (let i = 0; i < events.length; i += this.o.maxBatchSize) {
      const chunk = events.slice(i, i + this.o.maxBatchSize);
      for (const e of chunk) {
        const batch = e.event.endsWith('_batch') && e.properties.tally_batch_id !== undefined;
        client.capture({
          distinctId: e.distinctId,
          event: e.event,
          properties: e.properties,
          timestamp: new Date(e.timestamp),
          uuid: e.uuid,
          // Batch events come from tally, not from the user's device: no GeoIP from tally's address.
          disableGeoip: batch ? true : e.properties.$geoip_disable === true,
        });
      }
      // capture() enqueues after a promise chain; let it settle, then flush (which rejects on failure).
      const target = i + chunk.length;
      for (let round = 0; flushed < target && round < 5; round++) {
        await new Promise((r) => setImmediate(r));
        await client.flush();
      }
      if (flushed < target) break;
    }
    if (flushed < events.length) throw new Error(`PostHog took ${flushed} of ${events.length} events`);
  }
}
