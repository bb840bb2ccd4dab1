/**
 * {@link PostHogSink} through posthog-node (./deliver.ts): each `send` uses its own short-lived client, so
 * events of a failed send cannot linger in a client queue and go out later behind the outbox's back;
 * `send` resolves only when PostHog has answered 2xx for every event.
 *
 * Bounded: a dead or hanging host costs at most `requestTimeoutMs × (retries + 1) + retryDelayMs × retries`
 * per send, and never more than what is left of the invocation (src/util/deadline.ts): the request timeout
 * and the retries are cut to fit, so an aggregator or outbox run ends before its Lambda timeout and the
 * outbox retries later.
 */
import type { PostHogEvent } from '../types';
import { deliverWithPostHogNode } from './deliver';
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

  /** Resolves once PostHog took every event; rejects otherwise, and never after the invocation's deadline. */
  async send(events: PostHogEvent[]): Promise<void> {
    if (events.length === 0) return;
    const out = await deliverWithPostHogNode(
      events.map((e) => ({
        distinctId: e.distinctId,
        event: e.event,
        properties: e.properties,
        timestamp: new Date(e.timestamp),
        uuid: e.uuid,
        // Batch events come from tally, not from the user's device: no GeoIP from tally's address.
        disableGeoip: e.event.endsWith('_batch') && e.properties.tally_batch_id !== undefined ? true : e.properties.$geoip_disable === true,
      })),
      this.o,
    );
    if (out.sent < events.length) throw new Error(`PostHog took ${out.sent} of ${events.length} events: ${out.reason}`);
  }
}
