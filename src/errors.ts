/**
 * Errors that carry an HTTP status. Handlers turn them into JSON answers; anything else is a 500.
 *
 * {@link ERROR_CODES} is the one table of every error code a client can see: its HTTP status and the
 * metric that counts it (as PostHog's capture maps its error enum to statuses in one place). The
 * middleware of src/http/errors.ts answers and counts from it; nothing else decides a status.
 */

/** One problem with the request, named by its JSON path (for example `batch.3.distinctId`). */
export interface FieldProblem {
  path: string;
  message: string;
}

/** The metric an error code is counted in (names in src/observability.ts); `reason` adds the code as a dimension. */
export interface ErrorCodeSpec {
  readonly status: number;
  readonly metric?: 'RequestsRejected' | 'QueueSendFailures' | 'FlagProxyFailures' | 'BodiesAlteredInTransit' | 'AuthUnavailable';
  /** Counted with the dimension `reason` = the code. */
  readonly byReason?: boolean;
}

/** Every error code, its status and its metric. */
export const ERROR_CODES = {
  /** Malformed JSON, schema errors, too many events, a timestamp out of range, a value SQS cannot carry. */
  invalid_request: { status: 400, metric: 'RequestsRejected', byReason: true },
  /** A gzip body that API Gateway delivered as text, which lost bytes on the way: the client must change a setting. */
  body_altered_in_transit: { status: 400, metric: 'BodiesAlteredInTransit' },
  /** No key, or a key tally does not know (or revoked, or past its rotation's grace). */
  unauthorized: { status: 401, metric: 'RequestsRejected', byReason: true },
  /** A client token past its expiry: the client asks its server for a new one. */
  token_expired: { status: 401, metric: 'RequestsRejected', byReason: true },
  /** A valid key without the scope the route needs, a token used for another distinct id, or an origin the project does not allow. */
  forbidden: { status: 403, metric: 'RequestsRejected', byReason: true },
  /** The project's rate limit: retry after `Retry-After` seconds; nothing of the request was queued. */
  rate_limited: { status: 429, metric: 'RequestsRejected', byReason: true },
  /** The project's monthly quota is used up; nothing of the request was queued. */
  quota_exceeded: { status: 429, metric: 'RequestsRejected', byReason: true },
  /** The key store could not be reached and the key is not cached: retry (never a silent 2xx). */
  auth_unavailable: { status: 503, metric: 'AuthUnavailable' },
  /** `POST /v1/tokens` on a deployment without a token master secret (`TALLY_TOKEN_SECRET`). */
  tokens_unavailable: { status: 503 },
  /** No such route (deeper than a declared path, or a method the path does not serve). */
  not_found: { status: 404, metric: 'RequestsRejected', byReason: true },
  /** The body, received or decompressed, is larger than the route accepts. */
  payload_too_large: { status: 413, metric: 'RequestsRejected', byReason: true },
  /** The queue did not take the events (refused, unreachable, or no time left in the invocation). */
  queue_unavailable: { status: 503, metric: 'QueueSendFailures' },
  /** Flag routes without a PostHog to forward to. */
  flags_unavailable: { status: 503, metric: 'FlagProxyFailures' },
  /** PostHog did not answer a forwarded flag request in time. */
  posthog_timeout: { status: 504, metric: 'FlagProxyFailures' },
  /** PostHog could not be reached for a forwarded flag request. */
  posthog_unreachable: { status: 502, metric: 'FlagProxyFailures' },
  /** Anything unexpected; names nothing internal. Counted by Lambda's and API Gateway's own error metrics. */
  internal_error: { status: 500 },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HttpError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldProblem[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = ERROR_CODES[code].status;
  }

  /** The JSON body the client receives. */
  toBody(): Record<string, unknown> {
    return this.details ? { error: this.code, message: this.message, details: this.details } : { error: this.code, message: this.message };
  }
}

/** 400: malformed JSON, bad schema, unsupported encoding. */
export class BadRequestError extends HttpError {
  constructor(message: string, details?: FieldProblem[]) {
    super('invalid_request', message, details);
  }
}

/** 401: no key, or a key tally does not know. */
export class UnauthorizedError extends HttpError {
  constructor(message = 'missing or unknown API key') {
    super('unauthorized', message, undefined, { 'www-authenticate': 'Bearer' });
  }
}

/** 403: authenticated, but not allowed this. */
export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** 429: a project limit; `retryAfterSeconds` for the rate limit. */
export class LimitError extends HttpError {
  constructor(code: 'rate_limited' | 'quota_exceeded', message: string, retryAfterSeconds?: number) {
    super(code, message, undefined, retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : undefined);
  }
}

/** 404: no such route. */
export class NotFoundError extends HttpError {
  constructor(message = 'not found') {
    super('not_found', message);
  }
}

/** 413: the body (after decompression) is larger than the route accepts. */
export class PayloadTooLargeError extends HttpError {
  constructor(limitBytes: number, what = 'body') {
    super('payload_too_large', `${what} exceeds ${limitBytes} bytes`);
  }
}

/** 503: the queue did not take the events; nothing was acknowledged. Safe to retry. */
export class QueueUnavailableError extends HttpError {
  constructor(message = 'queue unavailable, events were not accepted; retry') {
    super('queue_unavailable', message, undefined, { 'retry-after': '1' });
  }
}
