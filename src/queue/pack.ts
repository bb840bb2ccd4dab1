/**
 * Packs events into as few SQS messages as fit, and messages into as few SendMessageBatch calls as
 * SQS allows (≤ 10 entries, ≤ 1 MiB per call). Each message id is a digest of its events' uuids, so a
 * client that retries with the same uuids produces the same message ids and the aggregator counts
 * them once.
 */
import { PayloadTooLargeError, QueueUnavailableError } from '../errors';
import type { QueuedEvent } from '../types';
import { chunkBySize } from '../util/chunks';
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

/** Serialises events into message bodies of at most `maxBytes` bytes each. */
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
    const json = JSON.stringify(e);
    const bytes = Buffer.byteLength(json);
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
  return chunkBySize(messages, (m) => Buffer.byteLength(m.body), maxCallBytes, SQS_MAX_BATCH_ENTRIES);
}

/**
 * Packs `events` and sends every call in parallel with `sendBatch`, which returns the entries SQS
 * reported as failed; those are retried up to `entryRetries` rounds, then the send rejects with a 503.
 * The one send loop of every SQS queue implementation.
 */
export async function sendPacked(
  events: readonly QueuedEvent[],
  opts: { maxMessageBytes: number; entryRetries: number },
  sendBatch: (entries: PackedMessage[]) => Promise<PackedMessage[]>,
): Promise<SendResult> {
  const messages = packMessages(events, opts.maxMessageBytes);
  let calls = 0;
  await Promise.all(
    groupIntoCalls(messages).map(async (entries) => {
      let pending = entries;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > opts.entryRetries) {
          throw new QueueUnavailableError(`queue refused ${pending.length} message(s); nothing in them was accepted, retry`);
        }
        calls++;
        pending = await sendBatch(pending);
      }
    }),
  );
  return { messages: messages.length, calls };
}
