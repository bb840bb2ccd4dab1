/**
 * Deltas: what one aggregator run adds, cut by roll-up shard and roll-up window, so that the roll-up
 * of a (shard, window) reads only its own items. Pure: routing, encoding, splitting by size.
 *
 * **Which window a row is rolled up in.** A row whose event window `E` is still open enough when the
 * run starts (`E` ends less than half the grace before the run's start) goes to `E` itself: on time,
 * it joins `E`'s batch event. An older row goes to the run's own current window `win(start − grace/2)`:
 * late, it becomes a correction. A run commits only within half the grace of its start
 * (src/aggregate/aggregator.ts), so every committed delta of window `W` exists before `W` ends plus
 * the grace: when the roll-up of `W` starts, `W`'s set of committed deltas is final.
 */
import { gzipSync, gunzipSync } from 'node:zlib';
import { userShard, TOTALS_SHARD } from '../store/keys';
import type { AggregationWindow } from '../windows';
import { totalsOf, type Aggregate, type Forward, type Row } from './rows';

/** Largest compressed delta (or outbox entry) kept in one item: DynamoDB items stop at 400 KB. */
export const MAX_ITEM_DATA_BYTES = 350 * 1024;

const floorTo = (ms: number, len: number): number => ms - (((ms % len) + len) % len);

/** The first window whose rows are still on time for a run that started at `runStart`. */
export const onTimeFrom = (runStart: number, w: AggregationWindow): number => floorTo(runStart - w.graceMs / 2, w.lengthMs);

/** The roll-up window of a row of slot `slot` counted by a run that started at `runStart`. */
export const rollupWindowOf = (slot: number, runStart: number, w: AggregationWindow): number => Math.max(floorTo(slot, w.lengthMs), onTimeFrom(runStart, w));

/** The latest moment a run that started at `runStart` may commit. */
export const commitDeadline = (runStart: number, w: AggregationWindow): number => runStart + w.graceMs / 2;

/** A delta before encoding: the rows and forwarded events of one (shard, window). */
export interface DeltaPlan {
  shard: string;
  window: number;
  rows: Row[];
  forward: Forward[];
}

/** Routes an aggregate's rows to (shard, window): per-user rows by user shard, their totals to the totals shard. */
export function planDeltas(agg: Aggregate, runStart: number, w: AggregationWindow, shards: number): DeltaPlan[] {
  const plans = new Map<string, DeltaPlan>();
  const plan = (shard: string, window: number): DeltaPlan => {
    const k = `${shard}|${window}`;
    let p = plans.get(k);
    if (!p) plans.set(k, (p = { shard, window, rows: [], forward: [] }));
    return p;
  };
  for (const r of agg.rows) plan(userShard(r.project, r.event, r.distinctId, shards), rollupWindowOf(r.slot, runStart, w)).rows.push(r);
  for (const r of totalsOf(agg.rows)) plan(TOTALS_SHARD, rollupWindowOf(r.slot, runStart, w)).rows.push(r);
  const now = onTimeFrom(runStart, w);
  for (const f of agg.forward) plan(userShard(f.project, f.event.event, f.event.distinctId, shards), now).forward.push(f);
  return [...plans.values()];
}

/** Compact JSON of a delta: rows grouped by (project, event, dims) as flat `[id, slot offset s, calls, …]` lists. */
interface Encoded {
  v: 1;
  g: Array<[project: string, event: string, dims: string | null, flat: Array<string | number>]>;
  f?: Array<[project: string, event: Forward['event']]>;
}

export function encodeDelta(window: number, rows: readonly Row[], forward: readonly Forward[]): Buffer {
  const groups = new Map<string, Encoded['g'][number]>();
  for (const r of rows) {
    const k = `${r.project.length}:${r.event.length}:${r.dims ?? ''}|${r.project}${r.event}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = [r.project, r.event, r.dims ?? null, []]));
    g[3].push(r.distinctId, (r.slot - window) / 1000, r.calls);
  }
  const body: Encoded = { v: 1, g: [...groups.values()] };
  if (forward.length > 0) body.f = forward.map((f) => [f.project, f.event]);
  return gzipSync(JSON.stringify(body), { level: 6 });
}

export function decodeDelta(window: number, data: Uint8Array): { rows: Row[]; forward: Forward[] } {
  const body = JSON.parse(gunzipSync(data).toString('utf8')) as Encoded;
  const rows: Row[] = [];
  for (const [project, event, dims, flat] of body.g) {
    for (let i = 0; i < flat.length; i += 3) {
      const row: Row = { project, event, distinctId: flat[i] as string, slot: window + (flat[i + 1] as number) * 1000, calls: flat[i + 2] as number };
      if (dims !== null) row.dims = dims;
      rows.push(row);
    }
  }
  return { rows, forward: (body.f ?? []).map(([project, event]) => ({ project, event })) };
}

/**
 * Encodes a plan into parts that each stay under `maxBytes` compressed: one part almost always; a
 * plan too large for one item is cut into even slices (rows and forwarded events), recursively.
 */
export function encodeParts(p: DeltaPlan, maxBytes = MAX_ITEM_DATA_BYTES): Buffer[] {
  const whole = encodeDelta(p.window, p.rows, p.forward);
  if (whole.length <= maxBytes) return [whole];
  if (p.rows.length + p.forward.length <= 1) throw new RangeError(`one forwarded event compresses to ${whole.length} bytes, more than the ${maxBytes} an item holds`);
  const pieces = Math.max(2, Math.ceil(whole.length / (maxBytes * 0.8)));
  const slice = <T>(xs: readonly T[], i: number): T[] => xs.slice(Math.floor((xs.length * i) / pieces), Math.floor((xs.length * (i + 1)) / pieces));
  const out: Buffer[] = [];
  for (let i = 0; i < pieces; i++) {
    const part: DeltaPlan = { ...p, rows: slice(p.rows, i), forward: slice(p.forward, i) };
    if (part.rows.length + part.forward.length > 0) out.push(...encodeParts(part, maxBytes));
  }
  return out;
}
