/**
 * Stage 3 of ingest: one event shape for the queue, whatever the client sent.
 * As PostHog's capture: numeric ids are already strings (schema), a missing uuid gets a UUIDv7,
 * a missing timestamp is the receipt time, and a client clock is corrected with `sent_at`/`offset`.
 */
import type { QueuedEvent } from '../types';
import { uuidv7 } from '../util/ids';
import type { NativeEvent, PostHogCaptureEvent } from './schema';

export interface ReceiptContext {
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  ip?: string;
  /** The client's clock when it sent the request (PostHog `sent_at`), epoch ms. */
  sentAt?: number;
}

/** Event timestamp, corrected for client clock skew the way PostHog does. */
function eventTime(ts: number | undefined, offset: number | undefined, ctx: ReceiptContext): number {
  if (offset !== undefined) return ctx.receivedAt - offset;
  if (ts === undefined) return ctx.receivedAt;
  if (ctx.sentAt !== undefined) return ctx.receivedAt - (ctx.sentAt - ts);
  return ts;
}

// Events without a timestamp (most native ones) share the receipt time: format it once per millisecond.
let isoMs = Number.NaN;
let iso = '';
function isoAt(ms: number): string {
  if (ms !== isoMs) {
    iso = new Date(ms).toISOString();
    isoMs = ms;
  }
  return iso;
}

export function fromNative(e: NativeEvent, ctx: ReceiptContext): QueuedEvent {
  return {
    uuid: e.uuid ?? uuidv7(ctx.receivedAt),
    event: e.event,
    distinct_id: e.distinctId,
    properties: e.properties ?? {},
    timestamp: isoAt(eventTime(e.timestamp, undefined, ctx)),
    ip: ctx.ip,
    received_at: ctx.receivedAt,
  };
}

export function fromPostHog(e: PostHogCaptureEvent, ctx: ReceiptContext): QueuedEvent {
  let properties = e.properties ?? {};
  // Top-level $set/$set_once (some SDKs) are moved into properties, where PostHog reads them.
  if (e.$set !== undefined || e.$set_once !== undefined) {
    properties = { ...properties };
    if (e.$set !== undefined) properties.$set = { ...(properties.$set as object | undefined), ...e.$set };
    if (e.$set_once !== undefined) properties.$set_once = { ...(properties.$set_once as object | undefined), ...e.$set_once };
  }
  return {
    uuid: e.uuid ?? uuidv7(ctx.receivedAt),
    event: e.event,
    distinct_id: e.distinct_id,
    properties,
    timestamp: isoAt(eventTime(e.timestamp, e.offset, ctx)),
    ip: ctx.ip,
    received_at: ctx.receivedAt,
  };
}
