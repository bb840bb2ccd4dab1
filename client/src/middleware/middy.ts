/**
 * middy middleware for APIs that run on Lambda behind API Gateway (REST API v1 or HTTP API v2
 * events). The route template is API Gateway's own (`/big/{id}`); at the end of every invocation the
 * client is flushed, because a frozen Lambda sends nothing in the background.
 */
import type { Tally } from '../tally';
import { createRecorder, type CallInfo } from './shared';

/** The parts of an API Gateway v1 (REST) or v2 (HTTP API) event the middleware reads. */
export interface ApiGatewayEventLike {
  /** v1 */
  httpMethod?: string;
  resource?: string;
  /** v2 */
  routeKey?: string;
  requestContext?: { http?: { method?: string }; httpMethod?: string; resourcePath?: string };
  headers?: Record<string, string | undefined> | null;
}

/** The parts of a Lambda context the middleware reads. */
export interface LambdaContextLike {
  getRemainingTimeInMillis?(): number;
}

/** The parts of middy's request object the middleware reads. */
export interface MiddyRequestLike<Event, Context> {
  event: Event;
  context: Context;
  response?: unknown;
  error?: unknown;
}

/** Options of {@link middyMiddleware}: functions of the event (and the Lambda context). */
export interface MiddyMiddlewareOptions<Event, Context> {
  /** Who made the call, e.g. `(event) => event.requestContext.authorizer?.jwt?.claims?.sub`. Required. */
  distinctId: (event: Event, context: Context) => string | number | null | undefined;
  /** The event name, or a function of the event. Default `api_call`. */
  event?: string | ((event: Event, context: Context) => string);
  /** More properties (merged over route, method, status, duration_ms). */
  properties?: (event: Event, call: CallInfo) => Record<string, unknown> | undefined;
  /** The route template, when API Gateway's is not what you want. */
  route?: (event: Event) => string | undefined;
  /** Invocations not to track. */
  skip?: (event: Event) => boolean;
  /** Longest wait for the flush at the end of an invocation, in ms (never past the Lambda's remaining time less 100 ms). Default 2,000. */
  flushTimeoutMs?: number;
}

export const middyMiddlewareDefaults = { flushTimeoutMs: 2000 };

/** API Gateway's route template: v2 `GET /big/{id}` → `/big/{id}`, v1 `resource`. */
function templateOf(e: ApiGatewayEventLike): string | undefined {
  if (typeof e.routeKey === 'string') {
    const i = e.routeKey.indexOf(' ');
    return i >= 0 ? e.routeKey.slice(i + 1) : e.routeKey;
  }
  return e.resource ?? e.requestContext?.resourcePath;
}

function statusOf(value: unknown, fallback: number): number {
  const s = (value as { statusCode?: unknown } | null | undefined)?.statusCode;
  return typeof s === 'number' ? s : fallback;
}

interface Req<E, C> {
  event: E;
  context: C;
}

/**
 * middy middleware that tracks every invocation of an API Gateway handler (`route`, `method`,
 * `status`, `duration_ms`) and flushes the client at its end (in `after` and `onError`).
 *
 * @example
 * ```ts
 * import middy from '@middy/core';
 * import { createTally, middyMiddleware } from '@tally/client';
 *
 * const tally = createTally({ url: process.env.TALLY_URL!, key: process.env.TALLY_API_KEY! });
 * export const handler = middy(async () => ({ statusCode: 200, body: 'ok' })).use(
 *   middyMiddleware(tally, { distinctId: (event) => event.headers?.['x-api-key'] }),
 * );
 * ```
 */
export function middyMiddleware<Event extends ApiGatewayEventLike = ApiGatewayEventLike, Context extends LambdaContextLike = LambdaContextLike>(
  tally: Tally,
  options: MiddyMiddlewareOptions<Event, Context>,
): {
  before: (request: MiddyRequestLike<Event, Context>) => void;
  after: (request: MiddyRequestLike<Event, Context>) => Promise<void>;
  onError: (request: MiddyRequestLike<Event, Context>) => Promise<void>;
} {
  const o = { ...middyMiddlewareDefaults, ...options };
  const userEvent = o.event;
  const record = createRecorder<Req<Event, Context>>(
    tally,
    {
      distinctId: (r) => o.distinctId(r.event, r.context),
      event: typeof userEvent === 'function' ? (r) => userEvent(r.event, r.context) : userEvent,
      properties: o.properties && ((r, call) => o.properties!(r.event, call)),
      route: o.route && ((r) => o.route!(r.event)),
      skip: o.skip && ((r) => o.skip!(r.event)),
    },
    'middyMiddleware',
  );
  const starts = new WeakMap<object, number>();
  const finish = async (request: MiddyRequestLike<Event, Context>, failed: boolean): Promise<void> => {
    const e = (request.event ?? {}) as Event;
    const start = starts.get(request) ?? performance.now();
    // API Gateway answers 200 to a result without a statusCode; an error no middleware turned into a response is a 500.
    const status = request.response !== undefined ? statusOf(request.response, 200) : failed ? statusOf(request.error, 500) : 200;
    record({ event: e, context: request.context }, { route: templateOf(e), method: e.requestContext?.http?.method ?? e.httpMethod ?? e.requestContext?.httpMethod ?? 'GET', status, durationMs: performance.now() - start });
    try {
      const remaining = request.context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
      await tally.flush({ timeoutMs: Math.max(0, Math.min(o.flushTimeoutMs, remaining - 100)) });
    } catch {
      /* never fail the invocation */
    }
  };
  return {
    before: (request) => {
      starts.set(request, performance.now());
    },
    after: (request) => finish(request, false),
    onError: (request) => finish(request, true),
  };
}
