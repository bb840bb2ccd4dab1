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

// Most calls of a process share a few event names: the last one's JSON is kept.
let lastEvent = '';
let lastEventJson = '""';
function eventJson(event: string): string {
  if (event !== lastEvent) {
    lastEventJson = JSON.stringify(event);
    lastEvent = event;
  }
  return lastEventJson;
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

/** Checks `e`, gives it a uuid and serialises it; throws an `invalid_event` {@link TallyError}. */
export function serialiseEvent(e: TrackEvent, maxBytes: number, now = Date.now()): SerialisedEvent {
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
  const timestamp = toEpochMs(e.timestamp, now);
  const uuid = uuidv7(now);
  let props = '';
  if (p !== undefined) {
    try {
      props = JSON.stringify(p);
    } catch (err) {
      throw new TallyError('invalid_event', `properties cannot be serialised as JSON: ${(err as Error).message}`, { events: 1, cause: err });
    }
  }
  // By hand around the properties: about half the CPU of one JSON.stringify of the whole event.
  const json = `{"uuid":"${uuid}","distinctId":${typeof distinctId === 'number' ? String(distinctId) : JSON.stringify(distinctId)},"event":${eventJson(event)},"timestamp":${timestamp}${props ? `,"properties":${props}` : ''}}`;
  const bytes = utf8Length(json);
  if (bytes > maxBytes) throw invalid(`event is ${bytes} bytes of JSON, more than the ${maxBytes} a batch may hold`);
  return { uuid, json, bytes };
}
