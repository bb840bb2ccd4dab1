/**
 * Packs events into as few SQS messages as fit, and messages into as few SendMessageBatch calls as
 * SQS allows (≤ 10 entries, ≤ 1 MiB per call). Each message id is a digest of its events' uuids, so a
 * client that retries with the same uuids produces the same message ids and the aggregator counts
 * them once. For that, a retried request must be cut into the same messages: the cut is decided by
 * what the client sent, never by what this receipt adds. Of what ingest adds, only the client's IP
 * varies in length between two receipts (`received_at` is 13 digits, `timestamp` a 24-character ISO
 * string), so every event is measured as if its IP took the longest text an IP can take.
 *
 * Bodies are JSON with every non-ASCII character escaped (`\u00e9`, `\ud83d\ude00`): SQS refuses
 * U+FFFE and U+FFFF and some of its implementations refuse characters outside the BMP, but every one
 * takes ASCII, and `JSON.parse` gives the aggregator the same strings back. So no event content can make
 * SQS refuse a message; that is decided here, before anything is sent.
 */
import { BadRequestError, PayloadTooLargeError, QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { chunkBySize } from '../util/chunks';
import { remainingMs } from '../util/deadline';
import { digest } from '../util/ids';
import type { SendResult } from './types';

/** SQS limits. */
export const SQS_MAX_BATCH_ENTRIES = 10;
export const SQS_MAX_BATCH_BYTES = 1024 * 1024;

export interface PackedMessage {
  id: string;
  body: string;
  events: number;
}

const HEAD = '{"v":1,"id":"';
// `{"v":1,"id":"<22 chars>","events":[` + `]}`
const OVERHEAD = HEAD.length + 22 + '","events":['.length + 2;

/** `,"ip":""` plus the longest IP text (an IPv4-mapped IPv6 address, 45 characters). */
const IP_RESERVE = ',"ip":""'.length + 45;
/** The size an event is packed by: its JSON with the IP field counted at its longest. */
const packingSize = (e: QueuedEvent, jsonLength: number): number => jsonLength - (e.ip === undefined ? 0 : e.ip.length + 8) + IP_RESERVE;

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_ALL = /[^\x00-\x7f]/g;
const escapeUnit = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `JSON.stringify(value)` in ASCII only: each non-ASCII UTF-16 unit as a `\uXXXX` escape (still the same JSON value). */
export function asciiJson(value: unknown): string {
  const json = JSON.stringify(value);
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, escapeUnit) : json;
}

/** Serialises events into message bodies of at most `maxBytes` bytes each (ASCII: bytes = characters). */
export function packMessages(events: readonly QueuedEvent[], maxBytes: number): PackedMessage[] {
  const out: PackedMessage[] = [];
  let parts: string[] = [];
  let uuids: string[] = [];
  let size = OVERHEAD;
  const flush = (): void => {
    if (parts.length === 0) return;
    const id = digest(uuids.join(','));
    out.push({ id, body: `${HEAD}${id}","events":[${parts.join(',')}]}`, events: parts.length });
    parts = [];
    uuids = [];
    size = OVERHEAD;
  };
  for (const e of events) {
    const json = asciiJson(e);
    // ≥ json.length, so the body stays within maxBytes; the same for every receipt of the event.
    const bytes = packingSize(e, json.length);
    if (OVERHEAD + bytes > maxBytes) throw new PayloadTooLargeError(maxBytes - OVERHEAD);
    if (size + bytes + 1 > maxBytes) flush();
    parts.push(json);
    uuids.push(e.uuid);
    size += bytes + 1;
  }
  flush();
  return out;
}

/** Groups messages into SendMessageBatch calls: ≤ 10 entries and ≤ 1 MiB of bodies each. */
export function groupIntoCalls(messages: readonly PackedMessage[], maxCallBytes = SQS_MAX_BATCH_BYTES): PackedMessage[][] {
  return chunkBySize(messages, (m) => m.body.length, maxCallBytes, SQS_MAX_BATCH_ENTRIES);
}

/** An entry of a SendMessageBatch that SQS did not take. */
export interface EntryFailure {
  message: PackedMessage;
  /** SQS says the message itself is at fault: sending it again cannot succeed. */
  senderFault: boolean;
  code: string;
  reason: string;
}

/** SendMessageBatch's answer, as both the JSON protocol and the SDK give it. */
export interface BatchAnswer {
  Successful?: { Id?: string }[];
  Failed?: { Id?: string; SenderFault?: boolean; Code?: string; Message?: string }[];
}

/**
 * The entries of a call (ids `"0"`, `"1"`, … in order) that SQS did not take: those it reports as
 * failed, and those it reports neither way (not known to be queued: sent again).
 */
export function entryFailures(entries: readonly PackedMessage[], res: BatchAnswer): EntryFailure[] {
  const out = new Map<number, EntryFailure>();
  for (const f of res.Failed ?? []) {
    const i = Number(f.Id);
    if (entries[i]) out.set(i, { message: entries[i], senderFault: f.SenderFault === true, code: f.Code ?? 'error', reason: f.Message ?? f.Code ?? 'refused' });
  }
  if (res.Successful) {
    const ok = new Set(res.Successful.map((x) => Number(x.Id)));
    entries.forEach((m, i) => {
      if (!ok.has(i) && !out.has(i)) out.set(i, { message: m, senderFault: false, code: 'NotAcknowledged', reason: 'neither successful nor failed in the answer' });
    });
  }
  return [...out.keys()].sort((a, b) => a - b).map((i) => out.get(i)!);
}

/** Backoff before resending failed entries: jittered, doubling from `entryRetryBaseMs`. */
export const entryRetryDefaults = { entryRetries: 2, entryRetryBaseMs: 25 } as const;

/**
 * Packs `events` and sends every call in parallel with `sendBatch`, which returns the entries SQS did
 * not take (a whole call that fails rejects, with a 503). Failed entries are sent again after a jittered
 * backoff, up to `entryRetries` rounds and never past the invocation's deadline; then the send rejects
 * with a 503 (retry). An entry SQS refuses as the sender's fault is never sent again: the request gets a
 * 400 naming SQS's reason, because a retry of it could never succeed. The one send loop of every SQS
 * queue implementation.
 */
export async function sendPacked(
  events: readonly QueuedEvent[],
  opts: { maxMessageBytes: number; entryRetries: number; entryRetryBaseMs?: number },
  sendBatch: (entries: PackedMessage[]) => Promise<EntryFailure[]>,
): Promise<SendResult> {
  const messages = packMessages(events, opts.maxMessageBytes);
  const base = opts.entryRetryBaseMs ?? entryRetryDefaults.entryRetryBaseMs;
  let calls = 0;
  let queued = 0;
  const partly = () => (queued > 0 ? `; ${queued} other message(s) of this request were queued and count: a retry with the same event uuids or Idempotency-Key counts them once` : '; nothing was accepted');
  await Promise.all(
    groupIntoCalls(messages).map(async (entries) => {
      let pending = entries;
      for (let round = 0; ; round++) {
        calls++;
        const failures = await sendBatch(pending);
        queued += pending.length - failures.length;
        const sender = failures.find((f) => f.senderFault);
        if (sender) {
          throw new BadRequestError(`the queue refused a message of this request as invalid (${sender.code}: ${sender.reason})${partly()}`, [
            { path: '(body)', message: `SQS ${sender.code}: ${sender.reason}` },
          ]);
        }
        if (failures.length === 0) return;
        const delay = Math.random() * base * 2 ** round;
        if (round >= opts.entryRetries || remainingMs() < delay + 50) {
          throw new QueueUnavailableError(`queue refused ${failures.length} message(s) (${failures[0]!.code})${queued > 0 ? partly() : '; nothing in them was accepted, retry'}`);
        }
        await new Promise((r) => setTimeout(r, delay));
        pending = failures.map((f) => f.message);
      }
    }),
  );
  return { messages: messages.length, calls };
}
