/**
 * {@link RawCapture} through posthog-node, the Lambda way (src/sink/deliver.ts, shared with the batch-event
 * sink): a client per call, flushed and awaited until PostHog took every event, so nothing waits in a queue
 * when Lambda freezes the container; a call's events never leak into another call's.
 *
 * Bounded: one attempt per request (`fetchRetryCount: 0`) with `requestTimeout = timeoutMs`, and the whole
 * call races a timer of `timeoutMs` (never past the invocation's deadline), so a dead or hanging PostHog
 * costs the request at most `timeoutMs` (posthog-node's defaults, 10 s × 3 retries 3 s apart, could hold
 * it ~49 s).
 *
 * A project with its own PostHog gets its sampled events there (`destination`); others go to the
 * deployment's.
 *
 * Each event goes out as the client sent it (same uuid, so a retried request does not double it in
 * PostHog), plus `sample_rate`. GeoIP: PostHog would have located the client's address had the client
 * sent the event itself, so `$ip` is set to it (API Gateway's source IP) unless the event has one;
 * without any address, GeoIP is off rather than locating the Lambda.
 */
import type { PostHog } from 'posthog-node';
import { deliverWithPostHogNode } from '../sink/deliver';
import { CaptureError, SAMPLE_RATE_PROPERTY, type PostHogDestination, type RawCapture, type SampledEvent } from './types';

type Fetch = NonNullable<NonNullable<ConstructorParameters<typeof PostHog>[1]>['fetch']>;

export interface RawCaptureOptions {
  projectKey: string;
  host: string;
  /** Bound of one capture call (request timeout and overall deadline). */
  timeoutMs: number;
  /** Events per HTTP request. */
  maxBatchSize?: number;
  fetch?: Fetch;
}

export class PostHogRawCapture implements RawCapture {
  constructor(private readonly o: RawCaptureOptions) {}

  async capture(events: readonly SampledEvent[], timeoutMs = this.o.timeoutMs, destination?: PostHogDestination): Promise<void> {
    const n = events.length;
    if (n === 0) return;
    if (!(timeoutMs > 0)) throw new CaptureError(n, n, 'no time left');
    const out = await deliverWithPostHogNode(
      events.map((s) => {
        const e = s.event;
        const properties: Record<string, unknown> = { ...e.properties, [SAMPLE_RATE_PROPERTY]: s.rate };
        if (properties.$ip === undefined && e.ip !== undefined) properties.$ip = e.ip;
        return {
          distinctId: e.distinct_id,
          event: e.event,
          uuid: e.uuid,
          timestamp: new Date(e.timestamp),
          properties,
          disableGeoip: properties.$geoip_disable === true || properties.$ip === undefined,
        };
      }),
      {
        apiKey: destination?.key ?? this.o.projectKey,
        host: destination?.host ?? this.o.host,
        requestTimeoutMs: timeoutMs,
        fetchRetryCount: 0,
        fetchRetryDelayMs: 0,
        maxBatchSize: this.o.maxBatchSize ?? 100,
        timeoutMs,
        ...(this.o.fetch ? { fetch: this.o.fetch } : {}),
      },
    );
    if (out.sent < n) throw new CaptureError(n - out.sent, n, out.reason ?? 'unknown');
  }
}
