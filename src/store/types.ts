import type { Granularity, PostHogEvent } from '../types';

/** Calls to add to one counter item. */
export interface CounterDelta {
  pk: string;
  sk: string;
  calls: number;
  granularity: Granularity;
}

/** Calls of one (event, distinct id, minute) in a batch: the ledger's unit. */
export interface AggRow {
  event: string;
  distinctId: string;
  /** Minute window start, epoch ms. */
  minute: number;
  calls: number;
  /** Latest event timestamp in the row, epoch ms. */
  last: number;
}

export type LedgerState = 'pending' | 'applied' | 'sent';

/**
 * What one aggregator run counted, written before any counter moves. A redelivered message whose
 * claim points here is resolved from it: re-applied if `pending`, skipped otherwise.
 */
export interface Ledger {
  batchId: string;
  state: LedgerState;
  /** When the ledger was written, epoch ms. */
  at: number;
  rows: AggRow[];
  /** `$` events to forward to PostHog unchanged. */
  forward: PostHogEvent[];
  /** When the counters were first fully applied, epoch ms. */
  appliedAt?: number;
  /** Whether the batch's idempotency marks were removed from its counters. */
  released?: boolean;
}

/** The result of claiming a message id for a batch. */
export type ClaimOutcome = { kind: 'claimed' } | { kind: 'taken'; owner: string; at: number };

/** A ledger waiting in the outbox (not yet `sent`). */
export interface OutboxEntry {
  batchId: string;
  at: number;
}

/** Window series answer. */
export interface SeriesPoint {
  start: string;
  calls: number;
}

/**
 * The aggregator's and the query's view of DynamoDB. Every write is idempotent or conditional, so a
 * run that dies anywhere can be resumed by another without counting anything twice.
 */
export interface UsageStore {
  /** Claims a message id for `batchId` unless another batch holds it. */
  claim(messageId: string, batchId: string, now: number): Promise<ClaimOutcome>;
  /** Moves a stale claim from `fromBatch` to `toBatch`; false if it moved meanwhile. */
  steal(messageId: string, fromBatch: string, toBatch: string, now: number): Promise<boolean>;
  /** Writes a new ledger (state `pending`) and its outbox entry. */
  putLedger(ledger: Ledger): Promise<void>;
  getLedger(batchId: string): Promise<Ledger | undefined>;
  /** `applied`: counters moved (records `appliedAt` once); `sent`: PostHog has the events. */
  setLedgerState(batchId: string, state: Exclude<LedgerState, 'pending'>, now: number): Promise<void>;
  /** Adds each delta once per batch (a repeated call for the same batch adds nothing). Returns items written. */
  applyCounters(batchId: string, deltas: CounterDelta[]): Promise<number>;
  /**
   * Forgets the batch's idempotency marks on its counters. Safe only when no run that saw the ledger
   * `pending` can still be applying it: a claim-stale period after `appliedAt`.
   */
  releaseCounters(batchId: string, deltas: CounterDelta[]): Promise<void>;
  /** Records that the marks are gone; the outbox entry goes once the ledger is also `sent`. */
  markReleased(batchId: string): Promise<void>;
  /** Removes an outbox entry (its ledger is done, or never existed). */
  deleteOutboxEntry(batchId: string): Promise<void>;
  /** Ledgers not yet sent, oldest first per shard. */
  listOutbox(limit: number): Promise<OutboxEntry[]>;
  /** Calls per window of a counter between two window starts (inclusive). */
  readSeries(pk: string, fromSk: string, toSk: string): Promise<SeriesPoint[]>;
}
