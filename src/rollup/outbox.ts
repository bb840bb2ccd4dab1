/**
 * The outbox: PostHog events of rolled-up units, kept until PostHog took them. Entries are delivered
 * by whoever holds their shard's lease (src/rollup/rollup.ts), oldest first:
 * - PostHog answers 2xx → the entry is deleted;
 * - PostHog refuses a request (a 4xx other than 408/429) → the entry is split in halves until the
 *   refused events are isolated; each is kept aside (`X#<shard>`, metric `PostHogEventsRejected`),
 *   the rest is delivered: **one poisoned event never blocks another**;
 * - PostHog is unreachable, times out or answers 5xx/429 → the entry stays, the next one is tried;
 *   after two such failures in a row of one destination (in any shards of the pass) that destination
 *   is not tried again in the pass ({@link DeliveryCircuit}), and a shard whose entries went nowhere
 *   backs off (exponentially, up to a minute). Nothing grows meanwhile but the number of entries, one
 *   per shard and window, each of bounded size.
 *
 * Resending an entry is safe: its events' uuids are fixed, and PostHog keeps one event per uuid.
 *
 * **Per project.** An entry can hold several projects' events; each project's go to its own destination
 * ({@link SinkFor}: the project's PostHog, else the deployment's), never to another's. When some
 * projects' events went out and others' did not (their PostHog down, or no destination yet), the entry
 * is rewritten with only those left, so the delivered ones are not resent and the rest wait; an entry
 * counts as a failure (towards the backoff) only when nothing of it could be delivered.
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

/**
 * Where a project's events go: its sink, or `undefined` when it has none yet (they wait in the outbox).
 * Rejects when that cannot be decided now (the project could not be read): the events wait too, and
 * never go to another destination instead.
 */
export type SinkFor = (project: string) => Promise<PostHogSink | undefined>;

export interface DeliveryDeps {
  store: OutboxStore & { putOutbox(e: OutboxEntry, now: number): Promise<void> };
  sinks: SinkFor;
  owner: string;
  now: () => number;
  /** Entries looked at per shard per pass. */
  limit: number;
  /** Stop starting new entries when less than this is left before the deadline. */
  reserveMs: number;
  /** Shared by the shards of one pass: a destination that failed twice in a row is not tried again in it. */
  circuit?: DeliveryCircuit;
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

/**
 * Retryable failures in a row per destination, over one roll-up pass. At two, the destination is down
 * as far as the pass is concerned: its events stay without another try, and other projects' destinations
 * are still tried — one project's PostHog down never holds back another's events.
 */
export class DeliveryCircuit {
  private readonly inARow = new Map<PostHogSink, number>();
  isOpen(sink: PostHogSink): boolean {
    return (this.inARow.get(sink) ?? 0) >= 2;
  }
  failed(sink: PostHogSink): void {
    this.inARow.set(sink, (this.inARow.get(sink) ?? 0) + 1);
  }
  succeeded(sink: PostHogSink): void {
    this.inARow.delete(sink);
  }
}

/** Backoff of a failing shard: 1 s, 2 s, 4 s … at most a minute (the schedule's period: longer saves nothing). */
const MAX_BACKOFF_MS = 60_000;

/**
 * Sends events; isolates refused ones by halving. Returns what PostHog refused, what it did not take
 * (`unsent`, with the retryable error), and how many it took.
 */
async function sendIsolating(sink: PostHogSink, events: ProjectEvent[]): Promise<{ sent: number; refused: Array<{ e: ProjectEvent; why: string }>; unsent: ProjectEvent[]; error?: unknown }> {
  try {
    await sink.send(events.map((e) => e.event));
    return { sent: events.length, refused: [], unsent: [] };
  } catch (err) {
    if (!isRefusal(err)) return { sent: 0, refused: [], unsent: events, error: err };
    if (events.length === 1) return { sent: 0, refused: [{ e: events[0]!, why: String(err) }], unsent: [] };
    const half = Math.ceil(events.length / 2);
    const a = await sendIsolating(sink, events.slice(0, half));
    if (a.error) return { ...a, unsent: [...a.unsent, ...events.slice(half)] };
    const b = await sendIsolating(sink, events.slice(half));
    return { sent: a.sent + b.sent, refused: [...a.refused, ...b.refused], unsent: b.unsent, error: b.error };
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
  const circuit = d.circuit ?? new DeliveryCircuit();
  let failures = st.failures;
  let done = 0;
  const left = new Set(entries);
  for (const e of entries) {
    if (remainingMs() < d.reserveMs) break;
    const events = decodeEntry(e.data);
    const byProject = new Map<string, ProjectEvent[]>();
    for (const x of events) {
      const g = byProject.get(x.project);
      if (g) g.push(x);
      else byProject.set(x.project, [x]);
    }
    const kept: ProjectEvent[] = [];
    const refused: Array<{ e: ProjectEvent; why: string }> = [];
    let sent = 0;
    let failed = 0;
    for (const [project, group] of byProject) {
      let sink: PostHogSink | undefined;
      try {
        sink = await d.sinks(project);
      } catch (err) {
        failed += group.length;
        kept.push(...group);
        d.log?.('warn', 'the destination of a project could not be read; its events stay for later', { shard: st.shard, entry: e.sk, project, error: String(err) });
        continue;
      }
      if (!sink || circuit.isOpen(sink)) {
        // No destination yet (waits, as without a PostHog key), or it is down for this pass: not a new failure.
        kept.push(...group);
        continue;
      }
      const r = await sendIsolating(sink, group);
      sent += r.sent;
      refused.push(...r.refused);
      if (r.error) {
        failed += r.unsent.length;
        kept.push(...r.unsent);
        circuit.failed(sink);
        d.log?.('warn', 'PostHog did not take an outbox entry; it stays for later', { shard: st.shard, entry: e.sk, project, error: String(r.error) });
      } else circuit.succeeded(sink);
    }
    for (const [n, x] of refused.entries()) await d.store.putRejected(st.shard, `${e.sk}#${n}`, x.e, x.why, d.now());
    if (refused.length) d.log?.('error', 'PostHog refused events; they are kept aside and block nothing', { shard: st.shard, entry: e.sk, refused: refused.length });
    rep.sent += sent;
    rep.rejected += refused.length;
    rep.failed += failed;
    if (kept.length === events.length && refused.length === 0) {
      // Nothing of it went out: a failure when PostHog was tried, else simply not deliverable yet.
      if (failed > 0) failures++;
      continue;
    }
    if (kept.length > 0) {
      // Only what is left stays: under the same key, so a resend never repeats what was delivered.
      const [rest] = encodeEntries(kept, Number.MAX_SAFE_INTEGER);
      await d.store.putOutbox({ shard: st.shard, sk: e.sk, data: rest!.data, count: rest!.count }, d.now());
    } else {
      await d.store.deleteOutbox(st.shard, e.sk);
      done++;
      left.delete(e);
    }
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
