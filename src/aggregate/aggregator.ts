/**
 * One aggregator run over a batch of queue messages (one SQS event source invocation). Its only
 * writes are one claim per message, a few deltas, and one commit marker; counters and PostHog events
 * come later, from the roll-up of each closed window (src/rollup/). Exactly once per message id,
 * across crashes, redeliveries and SQS duplicates:
 *
 * 1. **Claim** each message id for this run's batch id (conditional put).
 * 2. **Deltas**: the claimed messages' calls, per (shard, roll-up window) (src/aggregate/deltas.ts).
 * 3. **Commit**: the batch marker, a conditional put that only one of `committed` (this run) and
 *    `aborted` (a roll-up or another run giving up on it) can win. Deltas count iff their batch
 *    committed. A run commits only within half the grace of its start, and aborts itself otherwise.
 *
 * A redelivered message claimed by another batch is resolved from that batch's marker: committed →
 * a duplicate, acknowledged; aborted → the claim is taken over; no marker yet → if the claim is older
 * than the stale period, the other batch is aborted (if it has not committed just then) and the claim
 * taken over, else the message is retried later (its owner may still be working).
 */
import { gzipSync } from 'node:zlib';
import type { BatchStore, MarkerState } from '../store/types';
import type { QueueMessageBody } from '../types';
import { mapLimit } from '../util/concurrency';
import { uuidv7 } from '../util/ids';
import type { AggregationWindow } from '../windows';
import { commitDeadline, encodeParts, MAX_ITEM_DATA_BYTES, planDeltas } from './deltas';
import { aggregate, invalidMessage, isPostHogSystemEvent } from './rows';

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;

export interface AggregatorDeps {
  store: BatchStore;
  window: AggregationWindow;
  /** Per-user roll-up shards. */
  shards: number;
  /** Event properties that split the counters (`TALLY_DIMENSIONS`). */
  dimensions: readonly string[];
  /** A claim older than this belongs to a run that can no longer commit (≥ half the grace). */
  staleMs: number;
  /** Parallel DynamoDB requests. */
  concurrency?: number;
  now?: () => number;
  newBatchId?: () => string;
  log?: LogFn;
}

export const aggregatorDefaults = { concurrency: 32 };

/** A queue record as the SQS event source delivers it. */
export interface QueueRecord {
  messageId: string;
  body: string;
}

export interface RunReport {
  /** SQS message ids to report as batch item failures. */
  failures: string[];
  /** Messages counted by this run. */
  counted: number;
  /** Messages recognised as already counted. */
  duplicates: number;
  /** Calls counted (committed in deltas). */
  calls: number;
  /** Delta items written, and their compressed bytes. */
  deltas: number;
  deltaBytes: number;
  /** This run's batch id and whether it committed. */
  batchId?: string;
  committed: boolean;
}

interface Msg {
  body: QueueMessageBody;
  sqsIds: string[];
}

/** Forwarded `$` events this large are compressed ahead, to refuse one that no item could hold. */
const LARGE_FORWARD_JSON = 64 * 1024;

function parse(raw: string): { body?: QueueMessageBody; why?: string } {
  let b: unknown;
  try {
    b = JSON.parse(raw);
  } catch {
    return { why: 'not JSON' };
  }
  const why = invalidMessage(b);
  if (why) return { why };
  const body = b as QueueMessageBody;
  for (const e of body.events) {
    if (!isPostHogSystemEvent(e.event)) continue;
    const json = JSON.stringify(e);
    if (json.length > LARGE_FORWARD_JSON && gzipSync(json).length > MAX_ITEM_DATA_BYTES) return { why: `$ event ${e.uuid} is too large to store for forwarding` };
  }
  return { body };
}

export async function aggregateRecords(records: readonly QueueRecord[], deps: AggregatorDeps): Promise<RunReport> {
  const d = { ...aggregatorDefaults, ...deps };
  const now = d.now ?? Date.now;
  const report: RunReport = { failures: [], counted: 0, duplicates: 0, calls: 0, deltas: 0, deltaBytes: 0, committed: false };

  // Parse and validate before claiming: a message that can never count must not be claimed (it would
  // be acknowledged as a "duplicate" of this batch), it goes to the dead-letter queue instead.
  // Copies of one message id in the same batch (SQS duplicates) share one fate.
  const byId = new Map<string, Msg>();
  for (const r of records) {
    const p = parse(r.body);
    if (!p.body) {
      d.log?.('error', 'unreadable queue message; it will go to the dead-letter queue', { messageId: r.messageId, why: p.why });
      report.failures.push(r.messageId);
      continue;
    }
    const m = byId.get(p.body.id);
    if (m) m.sqsIds.push(r.messageId);
    else byId.set(p.body.id, { body: p.body, sqsIds: [r.messageId] });
  }
  const msgs = [...byId.values()];
  const fail = (ms: readonly Msg[]): void => {
    for (const m of ms) report.failures.push(...m.sqsIds);
  };
  if (msgs.length === 0) return finish(report);

  const batchId = (d.newBatchId ?? uuidv7)();
  report.batchId = batchId;
  const started = now();
  const deadline = commitDeadline(started, d.window);
  const mine: Msg[] = [];
  const duplicates = new Set<Msg>();
  let calls = 0;
  try {
    // 1. Claim.
    const claims = await mapLimit(msgs, d.concurrency, (m) => d.store.claim(m.body.id, batchId, now()));
    const owners = [...new Set(claims.flatMap((c) => (c.kind === 'taken' ? [c.owner] : [])))];
    const known = owners.length ? await d.store.markers(owners) : new Map<string, MarkerState>();
    const fates = await mapLimit(msgs, d.concurrency, async (m, i): Promise<'mine' | 'duplicate' | 'busy'> => {
      const c = claims[i]!;
      if (c.kind === 'claimed') return 'mine';
      let st = known.get(c.owner);
      if (st === undefined) {
        if (now() - c.at <= d.staleMs) return 'busy';
        st = await d.store.decide(c.owner, 'aborted', now());
        known.set(c.owner, st);
      }
      if (st === 'committed') return 'duplicate';
      return (await d.store.steal(m.body.id, c.owner, batchId, now())) ? 'mine' : 'busy';
    });
    msgs.forEach((m, i) => {
      const f = fates[i]!;
      if (f === 'mine') mine.push(m);
      else if (f === 'duplicate') duplicates.add(m);
      else fail([m]);
    });
    report.duplicates = duplicates.size;
    if (mine.length === 0) return finish(report);

    // 2. Deltas.
    if (now() > deadline) throw new Error('claims took longer than half the grace');
    const agg = aggregate(
      mine.map((m) => m.body),
      { slotMs: d.window.slotMs, dimensions: d.dimensions },
    );
    const writes = planDeltas(agg, started, d.window, d.shards).flatMap((p) =>
      encodeParts(p).map((data, part) => ({ shard: p.shard, window: p.window, batchId, part, data, calls: p.rows.reduce((n, r) => n + r.calls, 0) })),
    );
    await mapLimit(writes, d.concurrency, (w) => d.store.putDelta(w, now()));
    calls = agg.calls;
    report.deltas = writes.length;
    report.deltaBytes = writes.reduce((s, w) => s + w.data.length, 0);

    // 3. Commit, only while the roll-up of the earliest window written cannot have started.
    if (now() > deadline) throw new Error('deltas took longer than half the grace');
    const st = await d.store.decide(batchId, 'committed', now());
    if (st !== 'committed') throw new Error('the batch was aborted by another run before it could commit');
    report.committed = true;
    report.counted = mine.length;
    report.calls = calls;
  } catch (err) {
    // Abort, so a redelivery can take the claims over at once instead of after the stale period. If
    // the commit had landed after all (its answer lost), the abort loses the race and says so.
    const st = await d.store.decide(batchId, 'aborted', now()).catch(() => undefined);
    if (st === 'committed' && mine.length > 0) {
      report.committed = true;
      report.counted = mine.length;
      report.calls = calls;
      d.log?.('warn', 'the commit landed although the run saw an error', { batchId, error: String(err) });
      return finish(report);
    }
    d.log?.('error', 'batch not committed; its messages will be retried', { batchId, error: String(err) });
    report.duplicates = 0;
    fail(msgs);
  }
  return finish(report);
}

/** A message can be listed once per SQS copy: report each failure once. */
function finish(r: RunReport): RunReport {
  r.failures = [...new Set(r.failures)];
  return r;
}
