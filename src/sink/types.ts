import type { PostHogEvent } from '../types';

/**
 * Where batch events and forwarded `$` events go. `send` resolves once the destination has them
 * and rejects otherwise; the caller keeps unsent events in the outbox and retries later, with the
 * same uuids, so a retry cannot count twice.
 */
export interface PostHogSink {
  send(events: PostHogEvent[]): Promise<void>;
  /** Releases connections and timers (end of process). */
  close?(): Promise<void>;
}
