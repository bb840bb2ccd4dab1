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
import { deliverWithPostHogNode, type DeliveryOptions } from './deliver';
import type { PostHogSink } from './types';

/**
 * posthog-node's settings for the sink. `maxBatchSize` events per HTTP request: the outbox's entries
 * hold up to 5,000 (src/rollup/outbox.ts), ~2.3 MB of JSON (~0.3 MB gzipped), far under PostHog's
 * 20 MB `/batch` limit: one request per entry.
 */
export type PostHogSinkOptions = Omit<DeliveryOptions, 'timeoutMs'>;

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
        // Batch events come from tally, not from the user's device: they carry `$geoip_disable` (src/rollup/events.ts),
        // so PostHog does not locate them at tally's address. Forwarded events keep what the client said.
        disableGeoip: e.properties.$geoip_disable === true,
      })),
      this.o,
    );
    if (out.sent < events.length) throw new Error(`PostHog took ${out.sent} of ${events.length} events: ${out.reason}`);
  }
}
