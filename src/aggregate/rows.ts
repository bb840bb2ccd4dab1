/**
 * Pure aggregation of one aggregator run: queue messages → rows of calls per (project, event,
 * dimensions, distinct id, slot), plus the `$` events to forward. No I/O.
 *
 * A slot is the resolution rows keep: the aggregation window when it is shorter than a minute, else
 * a minute (src/windows.ts). Grouping keys carry each component's length, so no choice of strings
 * can make two rows share a key.
 */
import { MAX_TIME, MIN_TIME } from '../windows';
import { DEFAULT_PROJECT, type PostHogEvent, type QueueMessageBody, type QueuedEvent } from '../types';
import { dimsKey } from '../store/keys';

/** `$`-prefixed events are PostHog's own ($identify, $pageview, …): forwarded, never counted. */
export const isPostHogSystemEvent = (event: string): boolean => event.charCodeAt(0) === 36; /* $ */

/** Calls of one (project, event, dimensions, distinct id) in one slot. */
export interface Row {
  project: string;
  event: string;
  /** {@link dimsKey} of the configured dimensions' values; `undefined` when none are configured. */
  dims?: string;
  /** `''` in the totals across users. */
  distinctId: string;
  /** Slot start, epoch ms. */
  slot: number;
  calls: number;
}

/** A forwarded `$` event and the project it belongs to. */
export interface Forward {
  project: string;
  event: PostHogEvent;
}

export interface RowOptions {
  /** Slot length, ms (≤ 60,000, divides a minute). */
  slotMs: number;
  /** Event properties that split the counters (`TALLY_DIMENSIONS`), at most 3. */
  dimensions: readonly string[];
}

/** Longest dimension value kept (longer ones are cut): values are part of keys. */
export const MAX_DIMENSION_LENGTH = 200;

/** Why a queue message cannot be counted (it goes to the dead-letter queue), or `undefined` if it can. */
export function invalidMessage(b: unknown): string | undefined {
  const m = b as QueueMessageBody | null;
  if (!m || typeof m !== 'object' || m.v !== 1 || typeof m.id !== 'string' || !Array.isArray(m.events)) return 'not a tally queue message';
  for (let i = 0; i < m.events.length; i++) {
    const e = m.events[i] as QueuedEvent | null;
    if (!e || typeof e.event !== 'string' || e.event.length === 0 || typeof e.distinct_id !== 'string' || typeof e.uuid !== 'string') return `event ${i}: missing event, distinct_id or uuid`;
    const ts = Date.parse(e.timestamp);
    if (!(ts >= MIN_TIME && ts <= MAX_TIME)) return `event ${i}: timestamp ${JSON.stringify(e.timestamp)} outside 2000–9999`;
    if (e.properties !== undefined && (e.properties === null || typeof e.properties !== 'object')) return `event ${i}: properties is not an object`;
  }
  return undefined;
}

/** The value of each dimension in an event's properties, as strings; missing → `''`. */
export function dimensionValues(properties: Record<string, unknown> | undefined, dimensions: readonly string[]): string[] {
  return dimensions.map((d) => {
    const v = properties?.[d];
    const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    return s.length > MAX_DIMENSION_LENGTH ? s.slice(0, MAX_DIMENSION_LENGTH) : s;
  });
}

/** A grouping key no two different rows share: each component is prefixed by its length. */
const rowKey = (project: string, event: string, dims: string | undefined, distinctId: string, slot: number): string =>
  `${project.length}:${event.length}:${dims === undefined ? -1 : dims.length}:${distinctId.length}:${slot}|${project}${event}${dims ?? ''}${distinctId}`;

export interface Aggregate {
  rows: Row[];
  forward: Forward[];
  calls: number;
}

/** Counts `messages` (already validated with {@link invalidMessage}) into rows; collects `$` events. */
export function aggregate(messages: readonly QueueMessageBody[], o: RowOptions): Aggregate {
  const byKey = new Map<string, Row>();
  const forward: Forward[] = [];
  let calls = 0;
  const withDims = o.dimensions.length > 0;
  for (const m of messages) {
    for (const e of m.events) {
      const project = e.project ?? DEFAULT_PROJECT;
      if (isPostHogSystemEvent(e.event)) {
        const properties = e.ip !== undefined && e.properties?.$ip === undefined ? { ...e.properties, $ip: e.ip } : (e.properties ?? {});
        forward.push({ project, event: { uuid: e.uuid, event: e.event, distinctId: e.distinct_id, properties, timestamp: e.timestamp } });
        continue;
      }
      const ts = Date.parse(e.timestamp);
      const slot = ts - (ts % o.slotMs);
      const dims = withDims ? dimsKey(dimensionValues(e.properties, o.dimensions)) : undefined;
      const k = rowKey(project, e.event, dims, e.distinct_id, slot);
      const row = byKey.get(k);
      if (row) row.calls++;
      else byKey.set(k, { project, event: e.event, dims, distinctId: e.distinct_id, slot, calls: 1 });
      calls++;
    }
  }
  return { rows: [...byKey.values()], forward, calls };
}

/** The same rows summed across users (`distinctId` `''`): what the totals shard rolls up. */
export function totalsOf(rows: readonly Row[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const r of rows) {
    const k = rowKey(r.project, r.event, r.dims, '', r.slot);
    const t = byKey.get(k);
    if (t) t.calls += r.calls;
    else byKey.set(k, { project: r.project, event: r.event, dims: r.dims, distinctId: '', slot: r.slot, calls: r.calls });
  }
  return [...byKey.values()];
}

/** Merges rows with equal keys, summing calls (the roll-up merges the deltas of many runs). */
export function mergeRows(rows: Iterable<Row>): Row[] {
  const byKey = new Map<string, Row>();
  for (const r of rows) {
    const k = rowKey(r.project, r.event, r.dims, r.distinctId, r.slot);
    const t = byKey.get(k);
    if (t) t.calls += r.calls;
    else byKey.set(k, { ...r });
  }
  return [...byKey.values()];
}
