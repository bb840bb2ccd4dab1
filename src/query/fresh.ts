/**
 * What queries add to the counters so that a call is visible as soon as the aggregator run that
 * counted it has committed, before its window is rolled up: the committed deltas of the shards
 * asked about, minus what the counters already hold.
 *
 * The shard state says which deltas the counters hold: none of those of windows not yet rolled; all of
 * those of a unit being cleaned; and, for the unit being applied, those whose counter item's guard has
 * reached the unit's sequence number (the caller checks each item). The states are read before and
 * after; if a shard moved meanwhile the read is done again, so an answer never counts a call twice
 * or misses one.
 */
import { decodeDelta } from '../aggregate/deltas';
import type { Row } from '../aggregate/rows';
import type { ReadStore, ShardState } from '../store/types';
import { mapLimit } from '../util/concurrency';

/** A committed delta row not yet (or not certainly) in the counters. */
export interface FreshRow {
  row: Row;
  /** Set when the row belongs to the unit being applied: it counts only where the item's guard is below `seq`. */
  inUnit?: { guard: string; seq: number };
}

/** Committed, not-yet-counted rows of `shard` that `keep` selects. */
export async function freshRows(store: ReadStore, st: ShardState, keep: (r: Row) => boolean): Promise<FreshRow[]> {
  const deltas = await store.allDeltas(st.shard);
  if (deltas.length === 0) return [];
  const fates = await store.markers(deltas.map((d) => d.batchId));
  const unitWindow = st.window !== undefined ? new Date(st.window).toISOString() : undefined;
  const out: FreshRow[] = [];
  for (const d of deltas) {
    if (fates.get(d.batchId) !== 'committed') continue; // in flight (not counted yet) or aborted
    const inUnit = d.window === unitWindow && st.lastSk !== undefined && d.sk <= st.lastSk;
    if (inUnit && st.phase === 'cleaning') continue; // applied: the counters hold it
    const unit = inUnit && st.phase === 'rolling' ? { guard: `g${st.shard}`, seq: st.seq } : undefined;
    for (const row of decodeDelta(Date.parse(d.window), d.data).rows) if (keep(row)) out.push(unit ? { row, inUnit: unit } : { row });
  }
  return out;
}

const same = (a: ShardState, b: ShardState): boolean => a.seq === b.seq && a.phase === b.phase;

/**
 * Runs `read` with the states of `shards`, again if any shard's roll-up moved while it ran (at most
 * `attempts` times; the last answer stands, and roll-ups move once per window).
 */
export async function withStableStates<T>(store: ReadStore, shards: readonly string[], read: (states: Map<string, ShardState>) => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    const before = await mapLimit(shards, 8, (s) => store.getState(s));
    const answer = await read(new Map(before.map((s) => [s.shard, s])));
    const after = await mapLimit(shards, 8, (s) => store.getState(s));
    if (i >= attempts || before.every((s, j) => same(s, after[j]!))) return answer;
  }
}
