/**
 * Errors that carry an HTTP status. Handlers turn them into JSON answers; anything else is a 500.
 */

/** One problem with the request, named by its JSON path (for example `batch.3.distinctId`). */
export interface FieldProblem {
  path: string;
  message: string;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: FieldProblem[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  /** The JSON body the client receives. */
  toBody(): Record<string, unknown> {
    return this.details ? { error: this.code, message: this.message, details: this.details } : { error: this.code, message: this.message };
  }
}

/** 400: malformed JSON, bad schema, unsupported encoding. */
export class BadRequestError extends HttpError {
  constructor(message: string, details?: FieldProblem[]) {
    super(400, 'invalid_request', message, details);
  }
}

/** 401: no key, or a key tally does not know. */
export class UnauthorizedError extends HttpError {
  constructor(message = 'missing or unknown API key') {
    super(401, 'unauthorized', message, undefined, { 'www-authenticate': 'Bearer' });
  }
}

/** 404: no such route. */
export class NotFoundError extends HttpError {
  constructor(message = 'not found') {
    super(404, 'not_found', message);
  }
}

/** 413: the body (after decompression) is larger than the route accepts. */
export class PayloadTooLargeError extends HttpError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `body exceeds ${limitBytes} bytes`);
  }
}

/** 503: the queue did not take the events; nothing was acknowledged. Safe to retry. */
export class QueueUnavailableError extends HttpError {
  constructor(message = 'queue unavailable, events were not accepted; retry') {
    super(503, 'queue_unavailable', message, undefined, { 'retry-after': '1' });
  }
}
