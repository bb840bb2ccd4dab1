/**
 * {@link RawCapture} through posthog-node, the Lambda way: a client per call with `flushAt: 1` and
 * `flushInterval: 0`, awaited until PostHog took every event, so nothing waits in a queue when Lambda
 * freezes the container; a call's events never leak into another call's.
 *
 * Bounded: one attempt per request (`fetchRetryCount: 0`) with `requestTimeout = timeoutMs`, and the whole
 * call races a timer of `timeoutMs`, so a dead or hanging PostHog costs the request at most `timeoutMs`
 * (posthog-node's defaults, 10 s × 3 retries 3 s apart, could hold it ~49 s).
 *
 * Each event goes out as the client sent it (same uuid, so a retried request does not double it in
 * PostHog), plus `sample_rate`. GeoIP: PostHog would have located the client's address had the client
 * sent the event itself, so `$ip` is set to it (API Gateway's source IP) unless the event has one;
 * without any address, GeoIP is off rather than locating the Lambda.
 */
import { PostHog } from 'posthog-node';
import { CaptureError, SAMPLE_RATE_PROPERTY, type RawCapture, type SampledEvent } from './types';

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

  async capture(events: readonly SampledEvent[], timeoutMs = this.o.timeoutMs): Promise<void> {
    const n = events.length;
    if (n === 0) return;
    if (timeoutMs <= 0) throw new CaptureError(n, n, 'no time left');
    const client = new PostHog(this.o.projectKey, {
      host: this.o.host,
      flushAt: 1,
      flushInterval: 0,
      maxBatchSize: this.o.maxBatchSize ?? 100,
      maxQueueSize: n + 1,
      requestTimeout: timeoutMs,
      fetchRetryCount: 0,
      fetchRetryDelay: 0,
      enableLocalEvaluation: false,
      enableExceptionAutocapture: false,
      ...(this.o.fetch ? { fetch: this.o.fetch } : {}),
    });
    let sent = 0;
    let lastError: unknown;
    client.on('flush', (msgs: unknown) => {
      sent += Array.isArray(msgs) ? msgs.length : 0;
    });
    client.on('error', (err: unknown) => {
      lastError = err;
    });
    for (const s of events) {
      const e = s.event;
      const properties: Record<string, unknown> = { ...e.properties, [SAMPLE_RATE_PROPERTY]: s.rate };
      if (properties.$ip === undefined && e.ip !== undefined) properties.$ip = e.ip;
      client.capture({
        distinctId: e.distinct_id,
        event: e.event,
        uuid: e.uuid,
        timestamp: new Date(e.timestamp),
        properties,
        disableGeoip: properties.$geoip_disable === true || properties.$ip === undefined,
      });
    }
    // capture() enqueues after a promise chain and flushAt: 1 starts background flushes; settle, then
    // flush until every event is accounted for (a failed flush rejects; 'flush' counts what PostHog took).
    const work = (async () => {
      for (let round = 0; sent < n && round < 5; round++) {
        await new Promise((r) => setImmediate(r));
        await client.flush().catch((err: unknown) => {
          lastError = err;
        });
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([work.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (sent >= n) return;
    const reason = outcome === 'timeout' ? `no answer within ${timeoutMs} ms` : lastError instanceof Error ? lastError.message : String(lastError ?? 'unknown');
    throw new CaptureError(n - sent, n, reason);
  }
}
