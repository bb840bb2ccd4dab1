/**
 * The roll-up: once a window has closed plus its grace, the deltas every aggregator run wrote for it
 * are merged and applied to the counters with one guarded update per item, and the window's PostHog
 * events go to the outbox. One holder per shard at a time (a lease in the shard's state item); each
 * shard proceeds window by window, in units:
 *
 * 1. **Start** a unit: the state moves `idle → rolling` with the next sequence number `seq`, the
 *    window `W` and the last delta sort key it covers (a unit is W's deltas up to that key; W's set
 *    of committed deltas is final by then, see src/aggregate/deltas.ts).
 * 2. **Apply**: read the unit's deltas; a delta whose batch has no marker is given an `aborted` one
 *    (its run can no longer commit — or commits first, and then counts); merge the committed ones;
 *    `ADD` each counter item's sum only while the item's guard for this shard is below `seq`, then
 *    set it to `seq`; put the unit's PostHog events in the outbox under keys fixed by (W, seq).
 *    Re-running a unit after a crash reads the same deltas, skips the items already updated and
 *    rewrites the same outbox entries.
 * 3. **Clean**: `rolling → cleaning`, delete the unit's deltas, `cleaning → idle`.
 *
 * Every state move is conditional on the lease and on the state it leaves, so a holder that lost the
 * shard stops at its next move; whatever it did before is what the new holder would do too.
 * Then the holder delivers the shard's outbox (src/rollup/outbox.ts), each project's events to its
 * destination, if one is configured: counting never waits on PostHog.
 */
import { decodeDelta } from '../aggregate/deltas';
import { mergeRows, type Forward, type Row } from '../aggregate/rows';
import type { PostHogSink } from '../sink/types';
import { allShards, outboxSk, TOTALS_SHARD } from '../store/keys';
import type { DeltaItem, MarkerState, OutboxStore, RollupStore, ShardState } from '../store/types';
import { mapLimit } from '../util/concurrency';
import { remainingMs } from '../util/deadline';
import { uuidv7 } from '../util/ids';
import { iso, type AggregationWindow } from '../windows';
import type { LogFn } from '../aggregate/aggregator';
import { counterUpdates } from './counters';
import { unitEvents } from './events';
import { DeliveryCircuit, deliverOutbox, encodeEntries, type DeliveryReport, type SinkFor } from './outbox';

export interface RollupDeps {
  store: RollupStore & OutboxStore;
  /** The deployment's PostHog: where the outbox goes; unset: events wait in the outbox (counting goes on). */
  sink?: PostHogSink;
  /**
   * Where each project's events go (its own PostHog, else `sink`: src/rollup/sinks.ts). Unset: every
   * project's go to `sink`.
   */
  sinks?: SinkFor;
  window: AggregationWindow;
  /** Per-user shards. */
  shards: number;
  dimensions: readonly string[];
  /** Days minute and hour resolution are kept. */
  hourTtlDays: number;
  /** Lease holder id; default a new one per pass (two passes never share a lease, even in one process). */
  owner?: string;
  leaseMs?: number;
  /** Parallel DynamoDB requests per shard, and shards rolled at once. */
  concurrency?: number;
  shardConcurrency?: number;
  /** Compressed delta bytes per unit: bounds the memory of one unit. */
  maxUnitBytes?: number;
  /** Clock difference tolerated between aggregator runs and the roll-up. */
  skewMs?: number;
  /** Outbox entries delivered per shard per pass. */
  outboxLimit?: number;
  /** Time kept before the deadline: no unit or delivery starts with less left. */
  reserveMs?: number;
  now?: () => number;
  log?: LogFn;
}

export const rollupDefaults = {
  leaseMs: 60_000,
  concurrency: 32,
  shardConcurrency: 4,
  maxUnitBytes: 32 * 1024 * 1024,
  skewMs: 5000,
  outboxLimit: 20,
  reserveMs: 2000,
};

export interface RollupReport extends DeliveryReport {
  /** Units applied, calls they added, counter items written (and skipped as already written). */
  units: number;
  calls: number;
  counterWrites: number;
  counterSkips: number;
  /** PostHog events put in the outbox. */
  events: number;
  /** Batches found without a marker and aborted (runs that died or overran). */
  aborted: number;
  /** Deltas deleted. */
  cleaned: number;
  /** Shards another holder had. */
  busy: number;
  /** Shards that still had a due window when this pass stopped (out of time). */
  behind: number;
}

const emptyReport = (): RollupReport => ({ units: 0, calls: 0, counterWrites: 0, counterSkips: 0, events: 0, aborted: 0, cleaned: 0, busy: 0, behind: 0, sent: 0, failed: 0, rejected: 0, backlog: 0, oldestMs: 0 });

function add(into: RollupReport, r: Partial<RollupReport>): void {
  for (const [k, v] of Object.entries(r) as Array<[keyof RollupReport, number]>) {
    if (k === 'oldestMs') into.oldestMs = Math.max(into.oldestMs, v);
    else into[k] += v;
  }
}

/** Whether window `W` of the shard may be rolled at `now`. */
export const isDue = (windowStart: number, now: number, w: AggregationWindow, skewMs: number): boolean => windowStart + w.lengthMs + w.graceMs + skewMs <= now;

/**
 * One pass over the given shards (default: all): first roll every due window of every shard, then
 * deliver their outboxes — so counting never waits behind a slow PostHog. Once a destination fails twice
 * in a row during the pass, the remaining shards do not try it again (it is down: no point in trying each),
 * while other projects' destinations are still tried. Bounded by the current deadline
 * (src/util/deadline.ts) and `budgetMs`.
 */
export async function runRollup(deps: RollupDeps, o: { shards?: readonly string[]; budgetMs?: number; deliver?: boolean } = {}): Promise<RollupReport> {
  const d = { ...rollupDefaults, ...deps };
  const now = d.now ?? Date.now;
  const stopAt = o.budgetMs !== undefined ? Date.now() + o.budgetMs : Infinity;
  const timeLeft = (): number => Math.min(remainingMs(), stopAt - Date.now());
  const rep = emptyReport();
  const shards = o.shards ?? allShards(d.shards);
  const pass = { ...d, owner: d.owner ?? uuidv7() };
  await mapLimit(shards, d.shardConcurrency, async (shard) => {
    try {
      add(rep, await rollShard(shard, pass, now, timeLeft));
    } catch (err) {
      d.log?.('error', 'roll-up of a shard failed; the next pass resumes it', { shard, error: String(err) });
    }
  });
  const sinks: SinkFor | undefined = d.sinks ?? (d.sink ? async () => d.sink : undefined);
  if ((o.deliver ?? true) && sinks) {
    const circuit = new DeliveryCircuit();
    await mapLimit(
      shards.filter((s) => s !== TOTALS_SHARD),
      d.shardConcurrency,
      async (shard) => {
        if (timeLeft() < d.reserveMs) return;
        try {
          add(rep, await deliverShard(shard, pass, sinks, now, circuit));
        } catch (err) {
          d.log?.('error', 'outbox delivery of a shard failed; the next pass resumes it', { shard, error: String(err) });
        }
      },
    );
  }
  return rep;
}

/** Delivers one shard's outbox under its lease (the roll-up of the shard is done, or someone else's). */
async function deliverShard(shard: string, d: RollupDeps & typeof rollupDefaults & { owner: string }, sinks: SinkFor, now: () => number, circuit: DeliveryCircuit): Promise<Partial<RollupReport>> {
  const st = await d.store.acquire(shard, d.owner, now(), d.leaseMs);
  if (!st) return { busy: 1 };
  try {
    return await deliverOutbox(st, { store: d.store, sinks, owner: d.owner, now, limit: d.outboxLimit, reserveMs: d.reserveMs, log: d.log, circuit });
  } finally {
    await d.store.release(shard, d.owner).catch(() => undefined);
  }
}

async function rollShard(shard: string, d: RollupDeps & typeof rollupDefaults & { owner: string }, now: () => number, timeLeft: () => number): Promise<Partial<RollupReport>> {
  const owner = d.owner;
  const rep = emptyReport();
  let st: ShardState | undefined = await d.store.acquire(shard, owner, now(), d.leaseMs);
  if (!st) return { busy: 1 };
  const move = async (to: Partial<Omit<ShardState, 'shard' | 'owner'>>): Promise<boolean> => {
    const next = { ...to, leaseUntil: now() + d.leaseMs };
    if (!(await d.store.transition(shard, owner, st!, next))) {
      d.log?.('warn', 'lost the roll-up lease of a shard; stopping', { shard });
      st = undefined;
      return false;
    }
    st = { ...st!, ...next };
    return true;
  };
  try {
    let pending: DeltaItem[] | undefined;
    for (;;) {
      if (st.phase === 'rolling') {
        add(rep, await applyUnit(st, d, now, pending));
        pending = undefined;
        if (!(await move({ phase: 'cleaning' }))) return rep;
      }
      if (st!.phase === 'cleaning') {
        const items = await d.store.listDeltas(shard, iso(st!.window!), { lastSk: st!.lastSk });
        await d.store.deleteDeltas(shard, items.map((i) => i.sk));
        rep.cleaned += items.length;
        if (!(await move({ phase: 'idle' }))) return rep;
      }
      const first = await d.store.firstDelta(shard);
      if (!first) break;
      const w = Date.parse(first.window);
      if (!isDue(w, now(), d.window, d.skewMs)) break;
      if (timeLeft() < d.reserveMs * 2) {
        rep.behind++;
        break;
      }
      pending = await d.store.listDeltas(shard, first.window, { maxBytes: d.maxUnitBytes });
      if (pending.length === 0) continue;
      const cur: ShardState = st!;
      if (!(await move({ seq: cur.seq + 1, phase: 'rolling', window: w, lastSk: pending[pending.length - 1]!.sk, part: cur.window === w ? cur.part + 1 : 0 }))) return rep;
    }
    return rep;
  } finally {
    if (st) await d.store.release(shard, owner).catch(() => undefined);
  }
}

/** Step 2 of a unit: decide its batches, add its counters, put its events in the outbox. */
async function applyUnit(st: ShardState, d: RollupDeps & typeof rollupDefaults, now: () => number, listed?: DeltaItem[]): Promise<Partial<RollupReport>> {
  const shard = st.shard;
  const items = listed ?? (await d.store.listDeltas(shard, iso(st.window!), { lastSk: st.lastSk }));
  const fates = await decideBatches(d.store, items, now);
  let aborted = 0;
  for (const s of fates.values()) if (s === 'aborted') aborted++;
  const rows: Row[] = [];
  const forward: Forward[] = [];
  for (const i of items) {
    if (fates.get(i.batchId) !== 'committed') continue;
    const x = decodeDelta(Date.parse(i.window), i.data);
    for (const r of x.rows) rows.push(r);
    for (const f of x.forward) forward.push(f);
  }
  const merged = mergeRows(rows);
  const updates = counterUpdates(merged, shard, st.seq, { hourTtlDays: d.hourTtlDays });
  const applied = await mapLimit(updates, d.concurrency, (u) => d.store.applyCounter(u));
  const writes = applied.filter(Boolean).length;
  let events = 0;
  if (shard !== TOTALS_SHARD) {
    const evs = unitEvents(merged, forward, { shard, seq: st.seq, window: st.window!, part: st.part }, d.window, d.dimensions);
    const entries = encodeEntries(evs);
    await mapLimit(entries, 4, (e, n) => d.store.putOutbox({ shard, sk: outboxSk(st.window!, st.seq, n), data: e.data, count: e.count }, now()));
    events = evs.length;
  }
  return { units: 1, calls: merged.reduce((s, r) => s + r.calls, 0), counterWrites: writes, counterSkips: updates.length - writes, events, aborted };
}

/**
 * The fate of every batch with deltas in `items`: its marker, or — none yet, and its run can no
 * longer commit — an abort (which a commit landing first wins).
 */
export async function decideBatches(store: Pick<RollupStore, 'markers' | 'decide'>, items: readonly DeltaItem[], now: () => number): Promise<Map<string, MarkerState>> {
  const ids = [...new Set(items.map((i) => i.batchId))];
  const fates = await store.markers(ids);
  const open = ids.filter((id) => !fates.has(id));
  await mapLimit(open, 8, async (id) => {
    fates.set(id, await store.decide(id, 'aborted', now()));
  });
  return fates;
}
