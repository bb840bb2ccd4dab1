/**
 * The outbox: PostHog events of rolled-up units, kept until PostHog took them. Entries are delivered
 * by whoever holds their shard's lease (src/rollup/rollup.ts), oldest first:
 * - PostHog answers 2xx → the entry is deleted;
 * - PostHog refuses a request (a 4xx other than 408/429) → the entry is split in halves until the
 *   refused events are isolated; each is kept aside (`X#<shard>`, metric `PostHogEventsRejected`),
 *   the rest is delivered: **one poisoned event never blocks another**;
 * - PostHog is unreachable, times out or answers 5xx/429 → the entry stays, the next one is tried;
 *   after two such failures in a row (in any shards of the pass) delivery stops for the pass, and a
 *   failing shard backs off (exponentially, up to a minute). Nothing grows meanwhile but the number
 *   of entries, one per shard and window, each of bounded size.
 *
 * Resending an entry is safe: its events' uuids are fixed, and PostHog keeps one event per uuid.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { MAX_ITEM_DATA_BYTES } from '../aggregate/deltas';
import type { PostHogSink } from '../sink/types';
import type { OutboxEntry, OutboxStore, ShardState } from '../store/types';
import { remainingMs } from '../util/deadline';
import type { ProjectEvent } from './events';

/** Events per outbox entry (and so per PostHog request, with the sink's 5,000-event requests). */
export const OUTBOX_EVENTS_PER_ENTRY = 5000;

export function encodeEntry(events: readonly ProjectEvent[]): Buffer {
  return gzipSync(JSON.stringify(events.map((e) => [e.project, e.event])));
}

export function decodeEntry(data: Uint8Array): ProjectEvent[] {
  return (JSON.parse(gunzipSync(data).toString('utf8')) as Array<[string, ProjectEvent['event']]>).map(([project, event]) => ({ project, event }));
}

/** Cuts events into entries of at most {@link OUTBOX_EVENTS_PER_ENTRY} events and `maxBytes` compressed. */
export function encodeEntries(events: readonly ProjectEvent[], maxBytes = MAX_ITEM_DATA_BYTES): Array<{ data: Buffer; count: number }> {
  const out: Array<{ data: Buffer; count: number }> = [];
  const push = (slice: readonly ProjectEvent[]): void => {
    const data = encodeEntry(slice);
    if (data.length <= maxBytes || slice.length <= 1) out.push({ data, count: slice.length });
    else {
      const half = Math.ceil(slice.length / 2);
      push(slice.slice(0, half));
      push(slice.slice(half));
    }
  };
  for (let i = 0; i < events.length; i += OUTBOX_EVENTS_PER_ENTRY) push(events.slice(i, i + OUTBOX_EVENTS_PER_ENTRY));
  return out;
}

/** Whether PostHog refused the request for what it contained (retrying it unchanged cannot help). */
export function isRefusal(err: unknown): boolean {
  const e = err as { status?: unknown; response?: { status?: unknown } } | null;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.response?.status === 'number' ? e.response.status : undefined;
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export interface DeliveryDeps {
  store: OutboxStore;
  sink: PostHogSink;
  owner: string;
  now: () => number;
  /** Entries looked at per shard per pass. */
  limit: number;
  /** Stop starting new entries when less than this is left before the deadline. */
  reserveMs: number;
  /** Retryable failures in a row, shared by the shards of one pass: at two, delivery stops for the pass. */
  circuit?: { failuresInARow: number };
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export interface DeliveryReport {
  sent: number;
  failed: number;
  rejected: number;
  /** Entries still waiting after this pass (of those looked at). */
  backlog: number;
  /** Age of the oldest entry still waiting, ms (0 when none). */
  oldestMs: number;
}

/** Backoff of a failing shard: 1 s, 2 s, 4 s … at most a minute (the schedule's period: longer saves nothing). */
const MAX_BACKOFF_MS = 60_000;

/** Sends events; isolates refused ones by halving. Returns what PostHog refused, or the retryable error. */
async function sendIsolating(sink: PostHogSink, events: ProjectEvent[]): Promise<{ sent: number; refused: Array<{ e: ProjectEvent; why: string }>; error?: unknown }> {
  try {
    await sink.send(events.map((e) => e.event));
    return { sent: events.length, refused: [] };
  } catch (err) {
    if (!isRefusal(err)) return { sent: 0, refused: [], error: err };
    if (events.length === 1) return { sent: 0, refused: [{ e: events[0]!, why: String(err) }] };
    const half = Math.ceil(events.length / 2);
    const a = await sendIsolating(sink, events.slice(0, half));
    if (a.error) return a;
    const b = await sendIsolating(sink, events.slice(half));
    return { sent: a.sent + b.sent, refused: [...a.refused, ...b.refused], error: b.error };
  }
}

/** Window start encoded at the head of an outbox sort key. */
const entryWindow = (sk: string): number => Date.parse(sk.slice(0, sk.indexOf('#')));

/** Delivers one shard's outbox entries; the caller holds the shard's lease (state `st`). */
export async function deliverOutbox(st: ShardState, d: DeliveryDeps): Promise<DeliveryReport> {
  const rep: DeliveryReport = { sent: 0, failed: 0, rejected: 0, backlog: 0, oldestMs: 0 };
  const entries: OutboxEntry[] = await d.store.listOutbox(st.shard, d.limit);
  if (entries.length === 0) return rep;
  rep.oldestMs = Math.max(0, d.now() - entryWindow(entries[0]!.sk));
  if (st.retryAt > d.now()) {
    rep.backlog = entries.length;
    return rep;
  }
  const circuit = d.circuit ?? { failuresInARow: 0 };
  let failures = st.failures;
  let done = 0;
  const left = new Set(entries);
  for (const e of entries) {
    if (remainingMs() < d.reserveMs || circuit.failuresInARow >= 2) break;
    const events = decodeEntry(e.data);
    const r = await sendIsolating(d.sink, events);
    if (r.error) {
      rep.failed += events.length;
      circuit.failuresInARow++;
      failures++;
      d.log?.('warn', 'PostHog did not take an outbox entry; it stays for later', { shard: st.shard, entry: e.sk, error: String(r.error) });
      continue;
    }
    for (const [n, x] of r.refused.entries()) await d.store.putRejected(st.shard, `${e.sk}#${n}`, x.e, x.why, d.now());
    if (r.refused.length) d.log?.('error', 'PostHog refused events; they are kept aside and block nothing', { shard: st.shard, entry: e.sk, refused: r.refused.length });
    await d.store.deleteOutbox(st.shard, e.sk);
    done++;
    left.delete(e);
    rep.sent += r.sent;
    rep.rejected += r.refused.length;
    circuit.failuresInARow = 0;
    failures = 0;
  }
  rep.backlog = entries.length - done;
  const oldest = [...left][0];
  rep.oldestMs = oldest ? Math.max(0, d.now() - entryWindow(oldest.sk)) : 0;
  if (failures !== st.failures) {
    const retryAt = failures === 0 ? 0 : d.now() + Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 9));
    if (await d.store.transition(st.shard, d.owner, st, { retryAt, failures })) {
      st.retryAt = retryAt;
      st.failures = failures;
    }
  }
  return rep;
}
