/**
 * The store, by role: what the aggregator run, the roll-up, the outbox and the queries each need
 * from DynamoDB. One class implements them all (src/store/dynamo.ts); every write is conditional or
 * idempotent, so a run that dies anywhere can be resumed by another without counting twice.
 */

/** The result of claiming a message id for a batch. */
export type ClaimOutcome = { kind: 'claimed' } | { kind: 'taken'; owner: string; at: number };

/** A batch's final fate: committed (its deltas count) or aborted (they never will). */
export type MarkerState = 'committed' | 'aborted';

/** What an aggregator run needs: claims, deltas, and its commit marker. */
export interface BatchStore {
  /** Claims a message id for `batchId` unless another batch holds it. A claim already ours (a retried put) is `claimed`. */
  claim(messageId: string, batchId: string, now: number): Promise<ClaimOutcome>;
  /** Moves a claim from `fromBatch` to `toBatch`; false if it had moved elsewhere meanwhile (true if to `toBatch`). */
  steal(messageId: string, fromBatch: string, toBatch: string, now: number): Promise<boolean>;
  /** The markers that exist among `batchIds`. */
  markers(batchIds: readonly string[]): Promise<Map<string, MarkerState>>;
  /**
   * Writes `batchId`'s marker as `state` unless it has one, and returns the state it ends with: a
   * commit and an abort race, exactly one wins, and both sides learn which.
   */
  decide(batchId: string, state: MarkerState, now: number): Promise<MarkerState>;
  putDelta(d: DeltaWrite, now: number): Promise<void>;
}

export interface DeltaWrite {
  shard: string;
  window: number;
  batchId: string;
  part: number;
  /** Encoded rows (src/aggregate/deltas.ts). */
  data: Uint8Array;
  calls: number;
}

/** A delta as read back. */
export interface DeltaItem {
  sk: string;
  /** Window start, ISO. */
  window: string;
  batchId: string;
  part: number;
  data: Uint8Array;
}

/** Roll-up progress of one shard, and who holds it. */
export interface ShardState {
  shard: string;
  /** Sequence number of the last roll-up unit started (0: none yet). Guards counter items. */
  seq: number;
  /** `rolling`: unit `seq` is applying; `cleaning`: it is applied and its deltas are being deleted. */
  phase: 'idle' | 'rolling' | 'cleaning';
  /** Window of unit `seq`, epoch ms. */
  window?: number;
  /** The last delta sort key in unit `seq` (a unit is the window's deltas up to it). */
  lastSk?: string;
  /** Index of unit `seq` among the units of its window (a window too large for one unit has several). */
  part: number;
  /** Lease: holder and expiry (epoch ms). */
  owner?: string;
  leaseUntil: number;
  /** Outbox delivery backs off until this time after failures (epoch ms), and how many in a row. */
  retryAt: number;
  failures: number;
}

export interface CounterUpdate {
  pk: string;
  sk: string;
  /** Attribute → calls to add (`n` is the item's total, `m<minute>`/`d<day>` its slots). */
  add: Record<string, number>;
  /** Guard attribute of the shard (`g<shard>`), set to `seq`; the update applies only if it was lower. */
  guard: string;
  seq: number;
  /** Expiry (epoch seconds) set when the item is created. */
  ttl?: number;
}

/** A counter item as read: its sort key and numeric attributes. */
export interface CounterItem {
  pk: string;
  sk: string;
  values: Record<string, number>;
}

export interface OutboxEntry {
  shard: string;
  sk: string;
  /** gzip JSON of PostHog events with their project. */
  data: Uint8Array;
  count: number;
}

/** What the roll-up needs. */
export interface RollupStore {
  getState(shard: string): Promise<ShardState>;
  /** Takes the shard's lease unless another live holder has it; the state, or `undefined` if not taken. */
  acquire(shard: string, owner: string, now: number, leaseMs: number): Promise<ShardState | undefined>;
  /**
   * Moves the state from (`seq`, `phase`) to `to`, only while `owner` holds the lease and nobody
   * moved it meanwhile. False otherwise (the caller lost the shard and stops).
   */
  transition(shard: string, owner: string, from: Pick<ShardState, 'seq' | 'phase'>, to: Partial<Omit<ShardState, 'shard' | 'owner'>>): Promise<boolean>;
  release(shard: string, owner: string): Promise<void>;
  /** The first delta of the shard (oldest window first), if any. */
  firstDelta(shard: string): Promise<{ sk: string; window: string } | undefined>;
  /** Deltas of `window`, in sort key order, up to `lastSk` or until `maxBytes` of data are read. */
  listDeltas(shard: string, window: string, o?: { lastSk?: string; maxBytes?: number }): Promise<DeltaItem[]>;
  /** Every delta of the shard (what queries add to the counters). */
  allDeltas(shard: string): Promise<DeltaItem[]>;
  deleteDeltas(shard: string, sks: readonly string[]): Promise<void>;
  markers(batchIds: readonly string[]): Promise<Map<string, MarkerState>>;
  decide(batchId: string, state: MarkerState, now: number): Promise<MarkerState>;
  /** Applies one guarded update; false if this shard's unit `seq` (or a later one) was already applied there. */
  applyCounter(u: CounterUpdate): Promise<boolean>;
  putOutbox(e: OutboxEntry, now: number): Promise<void>;
}

/** What the outbox delivery needs. */
export interface OutboxStore {
  listOutbox(shard: string, limit: number): Promise<OutboxEntry[]>;
  deleteOutbox(shard: string, sk: string): Promise<void>;
  /** Keeps an event PostHog refused (4xx), so it blocks nothing and can be inspected. */
  putRejected(shard: string, sk: string, event: unknown, reason: string, now: number): Promise<void>;
  listRejected(shard: string, limit: number): Promise<Array<{ sk: string; event: unknown; reason: string }>>;
  getState(shard: string): Promise<ShardState>;
  acquire(shard: string, owner: string, now: number, leaseMs: number): Promise<ShardState | undefined>;
  transition(shard: string, owner: string, from: Pick<ShardState, 'seq' | 'phase'>, to: Partial<Omit<ShardState, 'shard' | 'owner'>>): Promise<boolean>;
  release(shard: string, owner: string): Promise<void>;
}

/** What the queries need. */
export interface ReadStore {
  getState(shard: string): Promise<ShardState>;
  allDeltas(shard: string): Promise<DeltaItem[]>;
  markers(batchIds: readonly string[]): Promise<Map<string, MarkerState>>;
  /** Items of `pk` with `fromSk ≤ sk ≤ toSk`. */
  queryRange(pk: string, fromSk: string, toSk: string): Promise<CounterItem[]>;
  /** Items of `pk` whose sk is `sk` or starts with `sk#`. */
  queryExactOrPrefixed(pk: string, sk: string): Promise<CounterItem[]>;
  /** Every item of `pk`. */
  queryAll(pk: string): Promise<CounterItem[]>;
}

export type UsageStore = BatchStore & RollupStore & OutboxStore & ReadStore;

/** Window series answer. */
export interface SeriesPoint {
  start: string;
  calls: number;
}
