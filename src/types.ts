/**
 * Domain types shared by every pipeline stage. One event shape travels from ingest to the aggregator.
 */

/** A usage event after ingest normalisation: what is queued and what the aggregator reads. */
export interface QueuedEvent {
  /** Client-supplied UUID, or a UUIDv7 assigned at receipt. */
  uuid: string;
  /** Event name, 1–200 characters. `$`-prefixed events are forwarded to PostHog, not counted. */
  event: string;
  /** Always a string (numeric ids are stringified), 1–200 characters. */
  distinct_id: string;
  properties: Record<string, unknown>;
  /** ISO-8601, corrected for client clock skew when the client sent `sent_at` (as PostHog does). */
  timestamp: string;
  /** Client IP as seen by API Gateway. */
  ip?: string;
  /** When tally received the event, epoch ms. */
  received_at: number;
  /** The project the event's key belongs to; `default` when absent. */
  project?: string;
}

/** What one SQS message carries: several events from one request, under a deterministic id. */
export interface QueueMessageBody {
  /** Format version. */
  v: 1;
  /** Deterministic id (hash of the events' uuids): the aggregator's exactly-once unit. */
  id: string;
  events: QueuedEvent[];
}

/** Query granularities: UTC minutes, hours, days and calendar months. */
export type Granularity = 'minute' | 'hour' | 'day' | 'month';
export const GRANULARITIES: readonly Granularity[] = ['minute', 'hour', 'day', 'month'] as const;

/** The project of events whose key names none (every key until projects exist). */
export const DEFAULT_PROJECT = 'default';

/** One event to send to PostHog (a batch event, or a forwarded `$` event). */
export interface PostHogEvent {
  uuid: string;
  event: string;
  distinctId: string;
  properties: Record<string, unknown>;
  timestamp: string;
}
