/**
 * One aggregator run over a batch of queue messages, exactly once per message id even across
 * crashes, redeliveries and SQS duplicates:
 *
 * 1. claim each message id for this run's batch id (conditional put);
 * 2. write the batch's ledger (what it counts, what it sends) — before any counter moves;
 * 3. add the counters, each guarded by the batch id, so a re-run adds nothing twice;
 * 4. mark the ledger `applied`; send the batch events to PostHog; mark it `sent`.
 *
 * A redelivered message whose claim belongs to another batch is resolved from that batch's ledger:
 * already applied → acknowledged as a duplicate; pending and stale → the ledger is re-applied, then
 * acknowledged; claimed but no ledger and stale → the claim is taken over; otherwise (the owner may be
 * alive) → reported as a batch item failure and retried later. PostHog failures never fail messages:
 * the ledger stays in the outbox and {@link drainOutbox} sends it later, with the same uuids.
 */
import { batchEvents, counterDeltas, aggregate } from './aggregate';
import type { Ledger, UsageStore } from '../store/types';
import type { PostHogSink } from '../sink/types';
import type { QueueMessageBody } from '../types';
import { chunkBySize } from '../util/chunks';
import { mapLimit } from '../util/concurrency';
import { uuidv7 } from '../util/ids';

export interface AggregatorDeps {
  store: UsageStore;
  sink: PostHogSink;
  /** A claim or pending ledger older than this belongs to a run that cannot be alive any more. */
  staleMs: number;
  /** Parallel claims per run. */
  concurrency?: number;
  /** Largest ledger (gzip) before a batch is split; DynamoDB items stop at 400 KB. */
  maxLedgerBytes?: number;
  now?: () => number;
  newBatchId?: () => string;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export const aggregatorDefaults = { concurrency: 32, maxLedgerBytes: 350 * 1024 };

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
  /** Calls added to the counters. */
  calls: number;
  /** Counter items written. */
  keys: number;
  /** PostHog events delivered / not delivered (kept in the outbox). */
  sent: number;
  sendFailed: number;
  /** Pending ledgers of crashed runs that this run finished. */
  recovered: number;
}

interface Msg {
  body: QueueMessageBody;
  sqsIds: string[];
}

function parseBody(raw: string): QueueMessageBody | undefined {
  try {
    const b = JSON.parse(raw) as QueueMessageBody;
    if (b && b.v === 1 && typeof b.id === 'string' && Array.isArray(b.events)) return b;
  } catch {
    /* reported below */
  }
  return undefined;
}

/** Splits messages so that each group's ledger fits in one item. */
function groupsFor(msgs: Msg[], maxBytes: number): Msg[][] {
  // JSON of rows compresses well; 3× the gzip limit in raw bytes is a safe first cut.
  const rawSize = (m: Msg): number => m.body.events.length * 96 + m.body.events.reduce((s, e) => s + (e.event.charCodeAt(0) === 36 ? JSON.stringify(e).length : 0), 0);
  return chunkBySize(msgs, rawSize, maxBytes * 3);
}

export async function aggregateRecords(records: readonly QueueRecord[], deps: AggregatorDeps): Promise<RunReport> {
  const d = { ...aggregatorDefaults, ...deps };
  const now = d.now ?? Date.now;
  const report: RunReport = { failures: [], counted: 0, duplicates: 0, calls: 0, keys: 0, sent: 0, sendFailed: 0, recovered: 0 };

  // Parse; copies of one message id in the same batch (SQS duplicates) share one fate.
  const byId = new Map<string, Msg>();
  for (const r of records) {
    const body = parseBody(r.body);
    if (!body) {
      d.log?.('error', 'unreadable queue message; it will go to the dead-letter queue', { messageId: r.messageId });
      report.failures.push(r.messageId);
      continue;
    }
    const m = byId.get(body.id);
    if (m) m.sqsIds.push(r.messageId);
    else byId.set(body.id, { body, sqsIds: [r.messageId] });
  }

  const ledgers = new Map<string, Promise<Ledger | undefined>>();
  const ledgerOf = (batchId: string): Promise<Ledger | undefined> => {
    let p = ledgers.get(batchId);
    if (!p) ledgers.set(batchId, (p = d.store.getLedger(batchId)));
    return p;
  };
  const recovering = new Map<string, Promise<void>>();
  const recover = (l: Ledger): Promise<void> => {
    let p = recovering.get(l.batchId);
    if (!p) {
      p = (async () => {
        d.log?.('warn', 'finishing the pending ledger of a run that stopped', { batchId: l.batchId });
        await applyLedger(d.store, l, now());
        report.recovered++;
        const r = await deliver(d.store, d.sink, l, now(), d.log);
        report.sent += r.sent;
        report.sendFailed += r.failed;
      })();
      recovering.set(l.batchId, p);
    }
    return p;
  };

  for (const group of groupsFor([...byId.values()], d.maxLedgerBytes)) {
    const batchId = (d.newBatchId ?? uuidv7)();
    const started = now();
    const fail = (m: Msg): void => {
      report.failures.push(...m.sqsIds);
    };
    try {
      // 1. Claim.
      const outcomes = await mapLimit(group, d.concurrency, async (m) => {
        const c = await d.store.claim(m.body.id, batchId, now());
        if (c.kind === 'claimed') return 'mine' as const;
        const owner = await ledgerOf(c.owner);
        if (owner) {
          if (owner.state !== 'pending') return 'duplicate' as const;
          if (now() - owner.at <= d.staleMs) return 'busy' as const;
          await recover(owner);
          return 'duplicate' as const;
        }
        if (now() - c.at <= d.staleMs) return 'busy' as const;
        return (await d.store.steal(m.body.id, c.owner, batchId, now())) ? ('mine' as const) : ('busy' as const);
      });
      const mine: Msg[] = [];
      group.forEach((m, i) => {
        const o = outcomes[i];
        if (o === 'mine') mine.push(m);
        else if (o === 'duplicate') report.duplicates++;
        else fail(m);
      });
      if (mine.length === 0) continue;

      // A run slower than the stale period may already have had its claims taken over: stop here.
      if (now() - started > d.staleMs / 2) {
        d.log?.('warn', 'claims took too long; leaving the messages for a retry', { batchId, ms: now() - started });
        mine.forEach(fail);
        continue;
      }

      // 2. Ledger, 3. counters, 4. applied.
      const agg = aggregate(mine.map((m) => m.body));
      const ledger: Ledger = { batchId, state: 'pending', at: now(), rows: agg.rows, forward: agg.forward };
      await d.store.putLedger(ledger);
      report.keys += await applyLedger(d.store, ledger, now());
      report.counted += mine.length;
      report.calls += agg.calls;

      // 5. PostHog (failures stay in the outbox; the messages are done either way).
      const r = await deliver(d.store, d.sink, ledger, now(), d.log);
      report.sent += r.sent;
      report.sendFailed += r.failed;
    } catch (err) {
      d.log?.('error', 'batch failed; its messages will be retried', { batchId, error: String(err) });
      // Messages already resolved as duplicates were counted in `duplicates`; retrying them is harmless.
      group.forEach(fail);
    }
  }
  // A message can be both failed (its group failed) and listed once per SQS copy: report each once.
  report.failures = [...new Set(report.failures)];
  return report;
}

/** Adds a ledger's counters (idempotent for its batch id) and marks it applied. Returns items written. */
export async function applyLedger(store: UsageStore, ledger: Ledger, now: number): Promise<number> {
  const keys = await store.applyCounters(ledger.batchId, counterDeltas(ledger.rows));
  await store.setLedgerState(ledger.batchId, 'applied', now);
  ledger.state = 'applied';
  ledger.appliedAt ??= now;
  return keys;
}

/** The PostHog events of a ledger: batch events plus forwarded `$` events. */
export const ledgerEvents = (l: Ledger) => [...batchEvents(l.batchId, l.rows), ...l.forward];

/** Sends an applied ledger's events; on success marks it `sent`. Never throws for PostHog errors. */
export async function deliver(
  store: UsageStore,
  sink: PostHogSink,
  ledger: Ledger,
  now: number,
  log?: AggregatorDeps['log'],
): Promise<{ sent: number; failed: number }> {
  const events = ledgerEvents(ledger);
  if (events.length > 0) {
    try {
      await sink.send(events);
    } catch (err) {
      log?.('warn', 'PostHog did not take the batch events; they stay in the outbox', { batchId: ledger.batchId, error: String(err) });
      return { sent: 0, failed: events.length };
    }
  }
  await store.setLedgerState(ledger.batchId, 'sent', now);
  ledger.state = 'sent';
  return { sent: events.length, failed: 0 };
}

export interface DrainReport {
  /** Ledgers looked at. */
  seen: number;
  /** Pending ledgers of stopped runs finished. */
  recovered: number;
  /** PostHog events delivered / failed. */
  sent: number;
  failed: number;
  /** Ledgers whose counter marks were released and that left the outbox. */
  done: number;
  /**
   * Ledgers older than the stale period whose PostHog events are still unsent after this drain
   * (PostHog failing): what the `OutboxBacklog` alarm watches.
   */
  backlog: number;
  /** Ledgers in flight in their own run, or sent and waiting out the stale period before release (normal). */
  waiting: number;
}

export interface DrainOptions {
  /** Ledgers per page. */
  limit?: number;
  /** Stop starting new pages after this many ms. */
  budgetMs?: number;
}

/**
 * The outbox job (scheduled in AWS, a timer locally, and a small share after each aggregator run):
 * finishes what runs left behind. Ledgers younger than the stale period belong to live runs and are
 * left alone. Older: pending → applied; applied → sent to PostHog; applied for longer than the stale
 * period → counter marks released; sent and released → removed from the outbox.
 * Pages through the outbox (oldest first) until a page leaves nothing to do or the budget is spent.
 */
export async function drainOutbox(deps: AggregatorDeps & DrainOptions): Promise<DrainReport> {
  const now = deps.now ?? Date.now;
  const limit = deps.limit ?? 200;
  const started = Date.now();
  const rep: DrainReport = { seen: 0, recovered: 0, sent: 0, failed: 0, done: 0, backlog: 0, waiting: 0 };
  for (;;) {
    const page = await drainPage(deps, now, limit);
    for (const k of Object.keys(rep) as (keyof DrainReport)[]) rep[k] += page[k];
    // Another page only if this one was full and freed room (entries left are younger or failing).
    if (page.seen < limit || page.done === 0 || Date.now() - started > (deps.budgetMs ?? 0)) return rep;
  }
}

async function drainPage(deps: AggregatorDeps, now: () => number, limit: number): Promise<DrainReport> {
  const entries = await deps.store.listOutbox(limit);
  const rep: DrainReport = { seen: entries.length, recovered: 0, sent: 0, failed: 0, done: 0, backlog: 0, waiting: 0 };
  await mapLimit(entries, 4, async (e) => {
    const l = await deps.store.getLedger(e.batchId);
    if (!l) {
      // The run stopped between the outbox entry and its ledger: its claims go stale and are taken over.
      if (now() - e.at > deps.staleMs) {
        await deps.store.deleteOutboxEntry(e.batchId);
        rep.done++;
      } else rep.backlog++;
      return;
    }
    // A fresh ledger belongs to a run that may still be working on it (and sending its events):
    // leave it alone, so nothing is sent twice.
    if (l.state !== 'sent' && now() - l.at <= deps.staleMs) {
      rep.waiting++;
      return;
    }
    if (l.state === 'pending') {
      await applyLedger(deps.store, l, now());
      rep.recovered++;
    }
    if (l.state === 'applied') {
      const r = await deliver(deps.store, deps.sink, l, now(), deps.log);
      rep.sent += r.sent;
      rep.failed += r.failed;
    }
    if (!l.released && l.appliedAt !== undefined && now() - l.appliedAt > deps.staleMs) {
      await deps.store.releaseCounters(l.batchId, counterDeltas(l.rows));
      await deps.store.markReleased(l.batchId);
      l.released = true;
    }
    if (l.state !== 'sent') rep.backlog++;
    else if (!l.released) rep.waiting++;
    else {
      await deps.store.deleteOutboxEntry(l.batchId);
      rep.done++;
    }
  });
  return rep;
}
