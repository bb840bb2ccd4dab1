/**
 * Person properties for flag evaluation, taken from the event itself: `$set_once`, then `$set` (which
 * wins, as it would in PostHog), then a configured mapping of event properties onto person
 * properties (`TALLY_SAMPLING_PERSON_PROPERTIES`, for example `firstRouteCalled=route,plan`), so a
 * flag condition such as "person property firstRouteCalled is /big/1" can be evaluated without a
 * network call. Properties the event does not carry are left out, never guessed.
 */
import type { QueuedEvent } from '../types';

/** person property ← event property. */
export type PersonPropertyMapping = ReadonlyArray<readonly [person: string, event: string]>;

const ITEM = /^([^=,\s]+)(?:\s*=\s*([^=,\s]+))?$/;

/**
 * Parses `person=event,name` (a bare name maps an event property onto the person property of the same
 * name). Throws a message naming the bad item.
 */
export function parsePersonPropertyMapping(spec: string | undefined): PersonPropertyMapping {
  if (spec === undefined || spec.trim() === '') return [];
  const out: Array<readonly [string, string]> = [];
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = ITEM.exec(item);
    if (!m) throw new Error(`"${item}" is not "personProperty=eventProperty" or "property"`);
    out.push([m[1]!, m[2] ?? m[1]!]);
  }
  return out;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The person properties an event supplies (see the module comment). Values that are `undefined` are dropped. */
export function personPropertiesOf(e: QueuedEvent, mapping: PersonPropertyMapping): Record<string, unknown> {
  const p = e.properties;
  const setOnce = p.$set_once;
  const set = p.$set;
  if (mapping.length === 0 && !isRecord(setOnce) && !isRecord(set)) return {};
  const out: Record<string, unknown> = {};
  if (isRecord(setOnce)) for (const k in setOnce) if (setOnce[k] !== undefined) out[k] = setOnce[k];
  if (isRecord(set)) for (const k in set) if (set[k] !== undefined) out[k] = set[k];
  for (const [person, event] of mapping) {
    const v = p[event];
    if (v !== undefined) out[person] = v;
  }
  return out;
}
