/**
 * One tracked call, checked the way tally's `POST /v1/usage` checks it and serialised once, at
 * `track()` time: tally rejects a whole request for one bad event, so an event it would refuse is
 * refused here, alone, instead of taking a batch of good ones down with it.
 */
import { TallyError } from './errors';
import { utf8Length } from './platform';
import { uuidv7 } from './uuid';

/** One call to count. */
export interface TrackEvent {
  /** Who made the call: a string or a finite number, 1–200 characters. */
  distinctId: string | number;
  /** What was called, 1–200 characters. Default `api_call`. */
  event?: string;
  /** Any JSON object (route, method, status, …). */
  properties?: Record<string, unknown>;
  /** When the call happened: a Date, epoch ms or an ISO-8601 string. Default: now. */
  timestamp?: Date | number | string;
}

/** An event as it goes on the wire (and into the spool): one JSON object. */
export interface SerialisedEvent {
  uuid: string;
  json: string;
  bytes: number;
}

export const MAX_NAME_LENGTH = 200;
export const DEFAULT_EVENT = 'api_call';

// The JSON of short strings seen recently (event names, route templates, methods, busy users):
// a Map lookup instead of JSON.stringify, cleared when it grows past STRING_CACHE_SIZE.
const STRING_CACHE_SIZE = 4096;
const strings = new Map<string, string>();
const keys = new Map<string, string>();

function jsonString(s: string): string {
  if (s.length > 64) return JSON.stringify(s);
  let j = strings.get(s);
  if (j === undefined) {
    if (strings.size >= STRING_CACHE_SIZE) strings.clear();
    j = JSON.stringify(s);
    strings.set(s, j);
  }
  return j;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * `JSON.stringify(p)`, written out for the common flat object (strings, numbers, booleans, null) in
 * about a third of its CPU; nested values go through `JSON.stringify` (so `toJSON`, arrays and
 * objects behave as there, and a BigInt throws as there).
 */
export function serialiseProperties(p: Record<string, unknown>): string {
  if (typeof (p as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(p);
  let out = '';
  for (const k in p) {
    if (!hasOwn.call(p, k)) continue;
    const v = p[k];
    let j: string;
    switch (typeof v) {
      case 'string':
        j = jsonString(v);
        break;
      case 'number':
        j = Number.isFinite(v) ? String(v) : 'null';
        break;
      case 'boolean':
        j = v ? 'true' : 'false';
        break;
      case 'undefined':
      case 'function':
      case 'symbol':
        continue;
      default: {
        const x = v === null ? 'null' : (JSON.stringify(v) as string | undefined);
        if (x === undefined) continue;
        j = x;
      }
    }
    let kj = keys.get(k);
    if (kj === undefined) {
      if (keys.size >= STRING_CACHE_SIZE) keys.clear();
      kj = `${JSON.stringify(k)}:`;
      keys.set(k, kj);
    }
    out += out === '' ? kj + j : `,${kj}${j}`;
  }
  return `{${out}}`;
}

const invalid = (message: string): TallyError => new TallyError('invalid_event', message, { events: 1 });

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw invalid(`${what} must not be empty`);
  if (value.length > MAX_NAME_LENGTH) throw invalid(`${what} must be at most ${MAX_NAME_LENGTH} characters (got ${value.length})`);
  return value;
}

function toEpochMs(t: TrackEvent['timestamp'], now: number): number {
  if (t === undefined) return now;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) throw invalid(`timestamp must be a Date, epoch milliseconds or an ISO-8601 string (got ${String(t)})`);
  return ms;
}

/** An event checked and given its uuid at `track()`, serialised later (when its batch is cut). */
export interface CheckedEvent {
  uuid: string;
  distinctId: string | number;
  event: string;
  timestamp: number;
  properties: Record<string, unknown> | undefined;
}

/** Checks `e` as tally would and gives it a uuid; throws an `invalid_event` {@link TallyError}. */
export function checkEvent(e: TrackEvent, now = Date.now()): CheckedEvent {
  if (e === null || typeof e !== 'object') throw invalid('track() takes an object: { distinctId, event?, properties?, timestamp? }');
  const distinctId = e.distinctId;
  if (typeof distinctId === 'number') {
    if (!Number.isFinite(distinctId)) throw invalid('distinctId must be a finite number');
  } else if (typeof distinctId === 'string') {
    checkName(distinctId, 'distinctId');
  } else {
    throw invalid(distinctId === undefined || distinctId === null ? 'distinctId is required' : `distinctId must be a string or a number, got ${typeof distinctId}`);
  }
  const event = e.event === undefined ? DEFAULT_EVENT : checkName(e.event, 'event');
  const p = e.properties;
  if (p !== undefined && (p === null || typeof p !== 'object' || Array.isArray(p))) throw invalid('properties must be an object');
  const timestamp = e.timestamp === undefined ? now : toEpochMs(e.timestamp, now);
  return { uuid: uuidv7(now), distinctId, event, timestamp, properties: p };
}

/** The event's JSON, as tally's native API takes it; throws an `invalid_event` {@link TallyError} if it cannot be written or exceeds `maxBytes`. */
export function eventJson(c: CheckedEvent, maxBytes: number): SerialisedEvent {
  let props = '';
  if (c.properties !== undefined) {
    try {
      props = serialiseProperties(c.properties);
    } catch (err) {
      throw new TallyError('invalid_event', `properties cannot be serialised as JSON: ${(err as Error).message}`, { events: 1, cause: err });
    }
  }
  const d = c.distinctId;
  // By hand: about a third of the CPU of one JSON.stringify of the whole event.
  const json = `{"uuid":"${c.uuid}","distinctId":${typeof d === 'number' ? String(d) : jsonString(d)},"event":${jsonString(c.event)},"timestamp":${c.timestamp}${props ? `,"properties":${props}` : ''}}`;
  const bytes = utf8Length(json);
  if (bytes > maxBytes) throw invalid(`event is ${bytes} bytes of JSON, more than the ${maxBytes} a batch may hold`);
  return { uuid: c.uuid, json, bytes };
}

/** {@link checkEvent} and {@link eventJson} at once (the spool writes each event as it is tracked). */
export function serialiseEvent(e: TrackEvent, maxBytes: number, now = Date.now()): SerialisedEvent {
  return eventJson(checkEvent(e, now), maxBytes);
}
