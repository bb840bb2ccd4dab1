/**
 * Stage 3 of ingest: one event shape for the queue, whatever the client sent.
 * As PostHog's capture: numeric ids are already strings (schema), a missing uuid gets a UUIDv7 (or, with an
 * `Idempotency-Key`, a uuid derived from it), a missing timestamp is the receipt time, and a client clock
 * is corrected with `sent_at`/`offset`. Beyond PostHog: an event time outside
 * [receipt − max age, receipt + 1 day] is a 400 naming the field (it would count in year 275760 or
 * −251427 otherwise), and the keys PostHog SDKs put in properties (`token`, `$token`, `api_key`) are
 * removed, so tally's key is never queued, forwarded or sampled.
 */
import { BadRequestError, type FieldProblem } from '../errors';
import type { QueuedEvent } from '../types';
import { deterministicUuid, uuidv7 } from '../util/ids';
import type { NativeEvent, PathOf, PostHogCaptureEvent } from './schema';

export interface ReceiptContext {
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  /** The client IP, as the project's IP policy lets it through (src/projects/ip.ts). */
  ip?: string;
  /** The project of the key or token that authenticated the request. */
  project?: string;
  /** The client's clock when it sent the request (PostHog `sent_at`), epoch ms. */
  sentAt?: number;
  /**
   * The request's `Idempotency-Key`, scoped to the key that authenticated it: events without a uuid get
   * one derived from it and their position, so a retried request makes the same message ids.
   */
  idempotency?: { key: string; scope: string };
}

/** Oldest and newest event times accepted, relative to receipt. */
export interface TimeWindow {
  maxAgeMs: number;
  maxAheadMs: number;
}

/** 35 days back (`TALLY_MAX_EVENT_AGE_DAYS`), 1 day ahead. */
export const timeWindowDefaults: TimeWindow = { maxAgeMs: 35 * 86_400_000, maxAheadMs: 86_400_000 };

/** Property names PostHog SDKs carry their project key in: tally's key, never passed on. */
export const KEY_PROPERTIES = ['token', '$token', 'api_key'] as const;

function withoutKeys(p: Record<string, unknown>): Record<string, unknown> {
  if (!('token' in p) && !('$token' in p) && !('api_key' in p)) return p;
  const out = { ...p };
  for (const k of KEY_PROPERTIES) delete out[k];
  return out;
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

const uuidFor = (given: string | undefined, index: number, ctx: ReceiptContext): string =>
  given ?? (ctx.idempotency ? deterministicUuid('tally-idempotency', ctx.idempotency.scope, ctx.idempotency.key, String(index)) : uuidv7(ctx.receivedAt));

export function fromNative(e: NativeEvent, ctx: ReceiptContext, index = 0): QueuedEvent {
  return {
    uuid: uuidFor(e.uuid, index, ctx),
    event: e.event,
    distinct_id: e.distinctId,
    properties: e.properties ? withoutKeys(e.properties) : {},
    timestamp: isoAt(eventTime(e.timestamp, undefined, ctx)),
    ip: ctx.ip,
    received_at: ctx.receivedAt,
    project: ctx.project,
  };
}

export function fromPostHog(e: PostHogCaptureEvent, ctx: ReceiptContext, index = 0): QueuedEvent {
  let properties = e.properties ? withoutKeys(e.properties) : {};
  // Top-level $set/$set_once (some SDKs) are moved into properties, where PostHog reads them.
  if (e.$set !== undefined || e.$set_once !== undefined) {
    properties = { ...properties };
    if (e.$set !== undefined) properties.$set = { ...(properties.$set as object | undefined), ...e.$set };
    if (e.$set_once !== undefined) properties.$set_once = { ...(properties.$set_once as object | undefined), ...e.$set_once };
  }
  return {
    uuid: uuidFor(e.uuid, index, ctx),
    event: e.event,
    distinct_id: e.distinct_id,
    properties,
    timestamp: isoAt(eventTime(e.timestamp, e.offset, ctx)),
    ip: ctx.ip,
    received_at: ctx.receivedAt,
    project: ctx.project,
  };
}

const day = (ms: number) => `${Math.round(ms / 86_400_000)} day${Math.round(ms / 86_400_000) === 1 ? '' : 's'}`;
const shown = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms));

/** Problems with the request's times: `sent_at`, and each event's time after clock correction. */
export function timeProblems(
  events: ReadonlyArray<{ timestamp?: number; offset?: number }>,
  ctx: ReceiptContext,
  pathOf: PathOf,
  window: TimeWindow = timeWindowDefaults,
): FieldProblem[] {
  const lo = ctx.receivedAt - window.maxAgeMs;
  const hi = ctx.receivedAt + window.maxAheadMs;
  const range = `within the last ${day(window.maxAgeMs)} and at most ${day(window.maxAheadMs)} ahead of tally's clock`;
  const out: FieldProblem[] = [];
  if (ctx.sentAt !== undefined && !(ctx.sentAt >= lo && ctx.sentAt <= hi)) out.push({ path: 'sent_at', message: `must be ${range} (got ${shown(ctx.sentAt)})` });
  for (let i = 0; i < events.length && out.length < 100; i++) {
    const e = events[i]!;
    if (e.timestamp === undefined && e.offset === undefined) continue;
    const t = eventTime(e.timestamp, e.offset, ctx);
    if (t >= lo && t <= hi) continue;
    const at = pathOf(i);
    const field = e.offset !== undefined ? 'offset' : 'timestamp';
    const corrected = e.offset !== undefined ? ` (puts the event at ${shown(t)})` : ctx.sentAt !== undefined ? ` (after correcting for sent_at: ${shown(t)})` : ` (got ${shown(t)})`;
    out.push({ path: at ? `${at}.${field}` : field, message: `must put the event ${range}${corrected}` });
  }
  return out;
}

/** Normalises the events of one request, after checking their times; a 400 names every bad time. */
export function normaliseEvents<E extends NativeEvent | PostHogCaptureEvent>(
  events: readonly E[],
  toQueued: (e: E, ctx: ReceiptContext, index: number) => QueuedEvent,
  ctx: ReceiptContext,
  pathOf: PathOf,
  window?: TimeWindow,
): QueuedEvent[] {
  const bad = timeProblems(events as ReadonlyArray<{ timestamp?: number; offset?: number }>, ctx, pathOf, window);
  if (bad.length > 0) throw new BadRequestError(events.length === 1 && bad.length === 1 ? 'event time out of range' : `${bad.length} time(s) out of range; nothing was accepted`, bad);
  const out: QueuedEvent[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) out[i] = toQueued(events[i]!, ctx, i);
  return out;
}
