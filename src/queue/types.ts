import type { QueuedEvent } from '../types';

/**
 * Where ingest puts events. `send` resolves only once every event is durably queued and rejects
 * otherwise (a `QueueUnavailableError` for the client): ingest answers 2xx only after it resolves.
 */
export interface EventQueue {
  send(events: QueuedEvent[]): Promise<SendResult>;
}

export interface SendResult {
  /** SQS messages written. */
  messages: number;
  /** Send calls made (SendMessageBatch). */
  calls: number;
}
