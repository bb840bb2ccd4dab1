/**
 * The package's one error family. Everything the client reports through `onError`, and everything it
 * throws (only from `createTally`, for bad options or a spool it cannot use), is a {@link TallyError}
 * whose `code` says what happened.
 */

/** What went wrong. */
export type TallyErrorCode =
  /** `createTally` was given options it cannot work with (thrown). */
  | 'invalid_options'
  /** The spool directory is used by another running process (thrown). */
  | 'spool_locked'
  /** `track()` refused an event tally would reject (bad distinctId, event name, timestamp, too large). */
  | 'invalid_event'
  /** A middleware could not attribute a request: `distinctId(req)` returned nothing or threw. Reported once per middleware. */
  | 'missing_distinct_id'
  /** One of a middleware's option functions (`event`, `properties`, `route`, `skip`) threw; the request was not tracked. Reported once per middleware. */
  | 'middleware_failed'
  /** The buffer was full: the oldest batch was dropped to make room. */
  | 'buffer_full'
  /** tally refused a batch with a 4xx other than 408/429; it is not retried. */
  | 'rejected'
  /** A request to tally failed (network, timeout, 408, 429, 5xx); the batch will be retried with the same uuids. */
  | 'send_failed'
  /** The spool could not be written, read or cleaned; events stay in memory. */
  | 'spool_failed'
  /** `track()` after `shutdown()`. */
  | 'closed';

/**
 * An error of the tally client.
 *
 * @example
 * ```ts
 * createTally({ url, key, onError: (err) => {
 *   if (err.code === 'rejected') console.error(`tally refused ${err.events} events: ${err.message}`);
 * } });
 * ```
 */
export class TallyError extends Error {
  /** HTTP status from tally, for `rejected` and `send_failed` answers. */
  readonly status?: number;
  /** How many events the problem concerns (a dropped or rejected batch, for example). */
  readonly events?: number;
  /** For `send_failed`: when the batch is tried again, in ms. */
  readonly retryInMs?: number;

  constructor(
    readonly code: TallyErrorCode,
    message: string,
    details: { status?: number; events?: number; retryInMs?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TallyError';
    if (details.status !== undefined) this.status = details.status;
    if (details.events !== undefined) this.events = details.events;
    if (details.retryInMs !== undefined) this.retryInMs = details.retryInMs;
  }
}
