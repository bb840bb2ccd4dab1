/**
 * The client: `createTally()` → `track()` (synchronous, never throws, never waits), batches cut by
 * size (`flushAt` events or `maxBatchBytes`) and time (`flushIntervalMs`), sent to tally's
 * `POST /v1/usage` a few at a time, retried with the same uuids until tally takes them, within a
 * memory bound (`maxQueue`) that drops the oldest batch when full, optionally spooled to disk.
 *
 * A batch is never changed once cut: a retry (or a replay from the spool after a crash) sends the same
 * events in the same order, which tally recognises and counts once.
 */
import { backoffDelay } from './backoff';
import { TallyError } from './errors';
import { checkEvent, eventJson, serialiseEvent, type CheckedEvent, type TrackEvent } from './event';
import { globals, type FetchLike } from './platform';
import { createEncoder, fetchTransport, nodeHttpTransport, postBatch, type Compression, type EncodedBody, type SendOutcome, type Transport } from './send';
import { Spool } from './spool';
import { unrefTimer, type Timer } from './timers';

/** tally's native API takes at most this many events per request. */
export const MAX_FLUSH_AT = 1000;

/** Options of {@link createTally}. Only `url` and `key` are required. */
export interface TallyOptions {
  /** tally's base URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com` or `http://127.0.0.1:3000`. */
  url: string;
  /** A tally API key (sent as `Authorization: Bearer <key>`). */
  key: string;
  /** Cut a batch at this many events (1–1,000). Default 1,000. */
  flushAt?: number;
  /** Cut a batch this long after its first event, in ms; 0: only by size and `flush()`. Default 1,000. */
  flushIntervalMs?: number;
  /** Most events held (waiting, in flight, retrying); when full the oldest batch is dropped. Default 100,000. */
  maxQueue?: number;
  /** A directory: spool every event to disk before `track()` returns, replay on the next start. Default: off. */
  spool?: string;
  /** Told about every problem (bad events, drops, refusals, failed attempts). Default: a throttled `console.warn`. */
  onError?: (err: TallyError) => void;
  /** Cut a batch before its JSON exceeds this many bytes (it then fits one of tally's 1 MiB queue messages). Default 800,000. */
  maxBatchBytes?: number;
  /** Requests to tally in flight at once. Default 4. */
  concurrency?: number;
  /** Give up on one attempt after this long, in ms (then retry). Default 10,000. */
  requestTimeoutMs?: number;
  /** First retry within this many ms; each further one doubles the ceiling (full jitter). Default 200. */
  retryBaseDelayMs?: number;
  /** Ceiling of the backoff, in ms. Default 10,000. */
  retryMaxDelayMs?: number;
  /** `gzip` (node:zlib on Node, `CompressionStream` elsewhere, plain where neither exists) or `none`. Default `gzip`. */
  compression?: Compression;
  /** Send with this `fetch` instead. Default: node:http(s) with a keep-alive agent on Node, `globalThis.fetch` elsewhere. */
  fetch?: FetchLike;
}

/** Counters since `createTally`. `tracked + replayed = delivered + dropped + rejected + queued` at any time. */
export interface TallyStats {
  /** Events `track()` accepted. */
  tracked: number;
  /** Events read back from the spool at start (left by an earlier process). */
  replayed: number;
  /** Events tally acknowledged (2xx). */
  delivered: number;
  /** Events dropped because the buffer was full (`maxQueue`), oldest batch first. */
  dropped: number;
  /** Events in batches tally refused with a 4xx other than 408/429 (not retried), and events that could not be written to JSON when their batch was cut. */
  rejected: number;
  /** Events held now: being filled, waiting, in flight or waiting for a retry. */
  queued: number;
  /** Events `track()` refused: invalid, too large, or after `shutdown()`. */
  invalid: number;
  /** Requests a middleware did not track because `distinctId` returned nothing (or an option function threw). */
  skipped: number;
  /** Requests to tally, retries included. */
  requests: number;
  /** Of those, retries. */
  retries: number;
  /** Failed spool writes or deletes (those events are still sent, but not crash-safe). */
  spoolErrors: number;
}

/** What `flush()` and `shutdown()` leave behind. */
export interface FlushResult {
  /** Events still held (0: everything tracked so far was delivered, refused or dropped). */
  pending: number;
}

/** A tally client. Create one per process with {@link createTally}. */
export interface Tally {
  /**
   * Queues one call; returns its uuid, or `undefined` if the event was refused (reported through
   * `onError`). Never throws and never waits: with a spool, it returns after one `write(2)`.
   */
  track(event: TrackEvent): string | undefined;
  /** Cuts the current batch and waits until everything tracked so far is delivered or dropped, or `timeoutMs` (default 10,000) passed. */
  flush(options?: { timeoutMs?: number }): Promise<FlushResult>;
  /** `flush()`, then stops timers and retries; later `track()` calls are refused. What is still held stays in the spool, if any. */
  shutdown(options?: { timeoutMs?: number }): Promise<FlushResult>;
  /** A snapshot of the counters. */
  stats(): TallyStats;
}

/** Default options, merged with what {@link createTally} is given. */
export const tallyDefaults = {
  flushAt: 1000,
  flushIntervalMs: 1000,
  maxQueue: 100_000,
  maxBatchBytes: 800_000,
  concurrency: 4,
  requestTimeoutMs: 10_000,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  compression: 'gzip' as Compression,
  onError: consoleReporter(10_000),
} satisfies Partial<TallyOptions>;

const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;

/**
 * An `onError` that prints each error with `console.warn`, at most once per code per `everyMs` (an
 * outage would otherwise print every retry of every batch).
 */
export function consoleReporter(everyMs: number): (err: TallyError) => void {
  const last = new Map<string, number>();
  return (err) => {
    const now = Date.now();
    const at = last.get(err.code);
    if (at !== undefined && now - at < everyMs) return;
    last.set(err.code, now);
    globals.console?.warn(`[tally] ${err.code}: ${err.message}`);
  };
}

/** Lets the middleware count requests it skipped, on the client they were given. */
export const TALLY_INTERNAL: unique symbol = Symbol.for('@tally/client.internal') as never;
export interface TallyInternal {
  skipped(err?: TallyError): void;
  report(err: TallyError): void;
}

/** An event in a batch: its JSON (spooled events, replayed ones), or checked and not yet written. */
type Item = string | CheckedEvent;

interface Batch {
  /** The events, until the body is encoded. */
  items: Item[] | undefined;
  count: number;
  /** Cut order; a batch split when it was written keeps its parent's (flush() waits for both). */
  seq: number;
  file: string | undefined;
  encoded: EncodedBody | undefined;
  attempts: number;
  state: 'ready' | 'sending' | 'waiting';
  timer: Timer | undefined;
}

interface OpenBatch {
  items: Item[];
  /** JSON bytes so far: counted as events are spooled (without a spool, batches are split by bytes when written). */
  bytes: number;
  /** A spool write failed: the segment no longer matches the batch. */
  spoolBroken: boolean;
}

const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
const nonNegative = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;

type ResolvedOptions = Required<Omit<TallyOptions, 'spool' | 'fetch'>> & Pick<TallyOptions, 'spool' | 'fetch'>;

function resolveOptions(options: TallyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TallyError('invalid_options', 'createTally({ url, key, … }) takes an options object');
  const o: ResolvedOptions = { ...tallyDefaults, ...options };
  const bad = (what: string) => new TallyError('invalid_options', what);
  if (typeof o.url !== 'string' || !/^https?:\/\/[^/]/.test(o.url)) throw bad(`url must be tally's http(s) base URL, got ${JSON.stringify(o.url)}`);
  if (typeof o.key !== 'string' || o.key === '') throw bad('key must be a tally API key');
  if (!posInt(o.flushAt) || o.flushAt > MAX_FLUSH_AT) throw bad(`flushAt must be an integer from 1 to ${MAX_FLUSH_AT} (tally takes at most ${MAX_FLUSH_AT} events per request)`);
  if (!nonNegative(o.flushIntervalMs)) throw bad('flushIntervalMs must be a number ≥ 0');
  if (!posInt(o.maxQueue) || o.maxQueue < o.flushAt) throw bad('maxQueue must be an integer ≥ flushAt');
  if (!posInt(o.maxBatchBytes)) throw bad('maxBatchBytes must be a positive integer');
  if (!posInt(o.concurrency)) throw bad('concurrency must be a positive integer');
  if (!posInt(o.requestTimeoutMs)) throw bad('requestTimeoutMs must be a positive integer');
  if (!nonNegative(o.retryBaseDelayMs) || !nonNegative(o.retryMaxDelayMs)) throw bad('retryBaseDelayMs and retryMaxDelayMs must be numbers ≥ 0');
  if (o.compression !== 'gzip' && o.compression !== 'none') throw bad("compression must be 'gzip' or 'none'");
  if (typeof o.onError !== 'function') throw bad('onError must be a function');
  if (o.spool !== undefined && (typeof o.spool !== 'string' || o.spool === '')) throw bad('spool must be a directory path');
  return o;
}

/** `<base>/v1/usage`, keeping a stage path (`…/prod`) and accepting the full endpoint too. */
export function usageEndpoint(url: string): string {
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/v1/usage') ? base : `${base}/v1/usage`;
}

class TallyClient implements Tally {
  private readonly o: ResolvedOptions;
  private readonly endpoint: string;
  private readonly send: Transport;
  private readonly encode: (json: string) => Promise<EncodedBody>;
  private readonly spool: Spool | undefined;
  private readonly counters: Omit<TallyStats, 'queued'> = { tracked: 0, replayed: 0, delivered: 0, dropped: 0, rejected: 0, invalid: 0, skipped: 0, requests: 0, retries: 0, spoolErrors: 0 };
  private open: OpenBatch = { items: [], bytes: 0, spoolBroken: false };
  private seq = 0;
  /** Resolved (and replaced) whenever a batch is done with: what flush() waits on. */
  private changed: { promise: Promise<void>; resolve: () => void } = signal();
  private openTimer: Timer | undefined;
  /** Cut batches, oldest first: waiting, in flight, or waiting for a retry. */
  private readonly batches: Batch[] = [];
  private held = 0;
  private inFlight = 0;
  private closed = false;
  private stopped = false;

  readonly [TALLY_INTERNAL]: TallyInternal = {
    skipped: (err) => {
      this.counters.skipped++;
      if (err) this.report(err);
    },
    report: (err) => this.report(err),
  };

  constructor(options: TallyOptions) {
    this.o = resolveOptions(options);
    this.endpoint = usageEndpoint(this.o.url);
    const http = this.o.fetch ? undefined : nodeHttpTransport(this.endpoint, this.o.requestTimeoutMs, this.o.concurrency);
    const f = this.o.fetch ?? globals.fetch;
    if (!http && typeof f !== 'function') throw new TallyError('invalid_options', 'no fetch in this runtime: pass options.fetch');
    this.send = http ?? fetchTransport(f!, this.endpoint, this.o.requestTimeoutMs);
    this.encode = createEncoder(this.o.compression);
    if (this.o.spool !== undefined) {
      this.spool = Spool.open(this.o.spool);
      this.replay(this.spool);
    }
  }

  track(event: TrackEvent): string | undefined {
    if (this.closed) {
      this.counters.invalid++;
      this.report(new TallyError('closed', 'track() after shutdown(): the event was not tracked', { events: 1 }));
      return undefined;
    }
    // Checked now; written to JSON when the batch is cut, in one tight loop off the request path
    // (one event at a time between requests runs on cold caches, at several times the CPU). With a
    // spool, written now: it must be on disk before track() returns.
    let item: Item;
    let uuid: string;
    let bytes = 0;
    try {
      if (this.spool) {
        const s = serialiseEvent(event, this.o.maxBatchBytes);
        item = s.json;
        uuid = s.uuid;
        bytes = s.bytes;
      } else {
        const c = checkEvent(event);
        item = c;
        uuid = c.uuid;
      }
    } catch (err) {
      this.counters.invalid++;
      this.report(err instanceof TallyError ? err : new TallyError('invalid_event', String(err), { events: 1, cause: err }));
      return undefined;
    }
    if (this.held >= this.o.maxQueue && !this.dropOldest()) {
      // Everything held is in flight: the newest event is the only one that can go.
      this.counters.dropped++;
      this.report(new TallyError('buffer_full', `buffer full (maxQueue ${this.o.maxQueue}) and every batch in flight: dropped the new event`, { events: 1 }));
      return undefined;
    }
    if (this.spool) {
      if (this.open.items.length > 0 && this.open.bytes + bytes + 1 > this.o.maxBatchBytes) this.cut();
      if (!this.open.spoolBroken) {
        try {
          this.spool.append(item as string);
        } catch (err) {
          this.open.spoolBroken = true;
          this.counters.spoolErrors++;
          this.report(new TallyError('spool_failed', `spool write failed, this batch is kept in memory only: ${(err as Error).message}`, { cause: err }));
        }
      }
    }
    const o = this.open;
    o.items.push(item);
    o.bytes += bytes + 1;
    this.held++;
    this.counters.tracked++;
    if (o.items.length >= this.o.flushAt) this.cut();
    else if (o.items.length === 1 && this.o.flushIntervalMs > 0) this.openTimer = unrefTimer(() => this.cut(), this.o.flushIntervalMs);
    return uuid;
  }

  async flush(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    this.cut();
    const upTo = this.seq;
    const timeoutMs = options.timeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
    let timedOut = false;
    const timer = unrefTimer(() => {
      timedOut = true;
      this.notify();
    }, Math.max(0, timeoutMs));
    while (!timedOut && this.batches.some((b) => b.seq <= upTo)) await this.changed.promise;
    clearTimeout(timer);
    return { pending: this.held };
  }

  async shutdown(options: { timeoutMs?: number } = {}): Promise<FlushResult> {
    this.closed = true;
    const r = await this.flush(options);
    this.stopped = true;
    clearTimeout(this.openTimer);
    for (const b of this.batches) clearTimeout(b.timer);
    this.spool?.close();
    return r;
  }

  stats(): TallyStats {
    return { ...this.counters, queued: this.held };
  }

  private report(err: TallyError): void {
    try {
      this.o.onError(err);
    } catch {
      /* an onError that throws must not break tracking */
    }
  }

  private replay(spool: Spool): void {
    let found: ReturnType<Spool['replay']>;
    try {
      found = spool.replay((file, line) => {
        this.counters.spoolErrors++;
        this.report(new TallyError('spool_failed', `unreadable line in ${file} left out: ${line.slice(0, 80)}`));
      });
    } catch (err) {
      this.counters.spoolErrors++;
      this.report(new TallyError('spool_failed', `spool could not be read: ${(err as Error).message}`, { cause: err }));
      return;
    }
    // Within the memory bound: the newest batches are kept.
    let total = found.reduce((n, b) => n + b.lines.length, 0);
    let first = 0;
    while (total > this.o.maxQueue && first < found.length) {
      const b = found[first++]!;
      total -= b.lines.length;
      this.counters.dropped += b.lines.length;
      this.safeRemove(b.file);
      this.report(new TallyError('buffer_full', `spool holds more than maxQueue ${this.o.maxQueue} events: dropped its oldest batch of ${b.lines.length}`, { events: b.lines.length }));
    }
    for (const b of found.slice(first)) {
      this.batches.push(newBatch(b.lines, b.file, ++this.seq));
      this.held += b.lines.length;
      this.counters.replayed += b.lines.length;
    }
    this.pump();
  }

  /** Cuts the open batch: it may now be sent, and will never change. */
  private cut(): void {
    clearTimeout(this.openTimer);
    this.openTimer = undefined;
    const open = this.open;
    if (open.items.length === 0) return;
    this.open = { items: [], bytes: 0, spoolBroken: false };
    let file: string | undefined;
    if (this.spool) {
      try {
        if (open.spoolBroken) this.spool.discardOpen();
        else file = this.spool.seal();
      } catch (err) {
        file = undefined;
        this.counters.spoolErrors++;
        this.report(new TallyError('spool_failed', `spool segment could not be sealed, this batch is kept in memory only: ${(err as Error).message}`, { cause: err }));
      }
    }
    this.batches.push(newBatch(open.items, file, ++this.seq));
    this.pump();
  }

  private pump(): void {
    if (this.stopped) return;
    for (const b of this.batches) {
      if (this.inFlight >= this.o.concurrency) return;
      if (b.state === 'ready') void this.sendBatch(b);
    }
  }

  private async sendBatch(b: Batch): Promise<void> {
    b.state = 'sending';
    this.inFlight++;
    let outcome: SendOutcome;
    try {
      if (!b.encoded) {
        // Off the request path that cut the batch (track() returns first), then in one loop.
        if (b.items!.some((x) => typeof x !== 'string')) await nextMacrotask();
        const lines = this.write(b);
        if (lines.length === 0) {
          this.inFlight--;
          this.finish(b);
          this.pump();
          return;
        }
        const json = `{"batch":[${lines.join(',')}]}`;
        b.encoded = await this.encode(json).catch((): EncodedBody => ({ body: json, gzip: false }));
        b.items = undefined;
      }
      this.counters.requests++;
      if (b.attempts > 0) this.counters.retries++;
      outcome = await postBatch(this.send, this.o.key, b.encoded);
    } catch (err) {
      outcome = { kind: 'retry', message: `could not send: ${(err as Error)?.message ?? String(err)}`, cause: err };
    }
    this.inFlight--;
    b.attempts++;
    if (outcome.kind === 'delivered') {
      this.counters.delivered += b.count;
      this.finish(b);
    } else if (outcome.kind === 'rejected') {
      this.counters.rejected += b.count;
      this.finish(b);
      this.report(new TallyError('rejected', `${outcome.message}; ${b.count} events dropped (a 4xx is not retried)`, { status: outcome.status, events: b.count }));
    } else if (this.stopped) {
      b.state = 'ready';
    } else {
      const delay = outcome.retryAfterMs ?? backoffDelay(b.attempts, this.o.retryBaseDelayMs, this.o.retryMaxDelayMs);
      b.state = 'waiting';
      b.timer = unrefTimer(() => {
        b.timer = undefined;
        b.state = 'ready';
        this.pump();
      }, delay);
      this.report(
        new TallyError('send_failed', `${outcome.message}; ${b.count} events retried in ${delay} ms (attempt ${b.attempts + 1}, same uuids)`, {
          status: outcome.status,
          events: b.count,
          retryInMs: delay,
          cause: outcome.cause,
        }),
      );
    }
    this.pump();
  }

  /**
   * The batch's events as JSON lines, before its first send (its composition is fixed from then on).
   * An event that cannot be written (a BigInt, a cycle, bigger than maxBatchBytes) is left out and
   * counted as rejected; events past maxBatchBytes move to new batches right after this one.
   */
  private write(b: Batch): string[] {
    const lines: string[] = [];
    let bytes = 0;
    let bad = 0;
    let firstError: TallyError | undefined;
    let rest: Item[] | undefined;
    const items = b.items!;
    for (let i = 0; i < items.length; i++) {
      const x = items[i]!;
      let line: string;
      let n: number;
      if (typeof x === 'string') {
        line = x;
        n = line.length;
      } else {
        try {
          const e = eventJson(x, this.o.maxBatchBytes);
          line = e.json;
          n = e.bytes;
        } catch (err) {
          bad++;
          firstError ??= err instanceof TallyError ? err : new TallyError('invalid_event', String(err), { cause: err });
          continue;
        }
        if (lines.length > 0 && bytes + n + 1 > this.o.maxBatchBytes) {
          rest = items.slice(i);
          break;
        }
      }
      lines.push(line);
      bytes += n + 1;
    }
    if (bad > 0) {
      this.counters.rejected += bad;
      this.held -= bad;
      this.report(new TallyError('invalid_event', `${bad} event(s) could not be written and were left out: ${firstError!.message}`, { events: bad, cause: firstError }));
    }
    if (rest) {
      const next = newBatch(rest, undefined, b.seq);
      this.batches.splice(this.batches.indexOf(b) + 1, 0, next);
    }
    b.count = lines.length;
    b.items = lines;
    return lines;
  }

  /** Drops the oldest batch not in flight; false if every batch is in flight. */
  private dropOldest(): boolean {
    const b = this.batches.find((x) => x.state !== 'sending');
    if (!b) return false;
    clearTimeout(b.timer);
    this.counters.dropped += b.count;
    this.finish(b);
    this.report(new TallyError('buffer_full', `buffer full (maxQueue ${this.o.maxQueue}): dropped the oldest batch of ${b.count} events`, { events: b.count }));
    return true;
  }

  private finish(b: Batch): void {
    const i = this.batches.indexOf(b);
    if (i >= 0) this.batches.splice(i, 1);
    this.held -= b.count;
    if (b.file) this.safeRemove(b.file);
    this.notify();
  }

  /** Wakes every flush() waiting, each once (a resolved signal is replaced, never awaited again). */
  private notify(): void {
    const c = this.changed;
    this.changed = signal();
    c.resolve();
  }

  private safeRemove(file: string): void {
    try {
      this.spool?.remove(file);
    } catch (err) {
      this.counters.spoolErrors++;
      this.report(new TallyError('spool_failed', `spool segment ${file} could not be deleted (it would be resent on the next start, and counted once): ${(err as Error).message}`, { cause: err }));
    }
  }
}

function newBatch(items: Item[], file: string | undefined, seq: number): Batch {
  return { items, count: items.length, seq, file, encoded: undefined, attempts: 0, state: 'ready', timer: undefined };
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** After the current task and its I/O callbacks (setImmediate where it exists). */
function nextMacrotask(): Promise<void> {
  const si = (globalThis as unknown as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  return new Promise((r) => (si ? si(r) : setTimeout(r, 0)));
}

/**
 * Creates a tally client: `track()` calls are batched (up to 1,000 events or 1 s), gzipped and sent to
 * tally's `POST /v1/usage`, retried with the same uuids until tally takes them.
 *
 * @example
 * ```ts
 * import { createTally } from '@tally/client';
 *
 * const tally = createTally({ url: process.env.TALLY_URL!, key: process.env.TALLY_API_KEY! });
 * tally.track({ distinctId: 'user-1', event: 'big_route', properties: { route: '/big/:id' } });
 * process.on('SIGTERM', () => void tally.shutdown().then(() => process.exit(0)));
 * ```
 */
export function createTally(options: TallyOptions): Tally {
  return new TallyClient(options);
}
