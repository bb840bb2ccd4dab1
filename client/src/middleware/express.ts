/**
 * Express / Connect middleware. The route template is taken at the moment Express matches a route
 * (`req.baseUrl` + the route's path, so `/sub` + `/x/:id`), because Express restores `req.baseUrl` when
 * an error leaves a router. The call is tracked when the response head is written, before any byte of
 * the answer leaves: a client that got its answer was tracked (with a spool, even if the process is
 * killed right after); if the client has gone before the answer, when the app ends the response. A
 * request the app never answers is not tracked: listening for every response's `close` would cost each
 * request more than tracking it.
 */
import type { Tally } from '../tally';
import { createRecorder, UNMATCHED_ROUTE, type MiddlewareOptions } from './shared';

/** The parts of an Express (or Connect, or node:http) request the middleware reads. */
export interface ExpressRequestLike {
  method?: string;
  baseUrl?: string;
  route?: { path?: unknown };
  headers: Record<string, string | string[] | undefined>;
}

/** The parts of a response the middleware reads (and `writeHead` and `end`, which it wraps). */
export interface ExpressResponseLike {
  statusCode: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  writeHead: (...args: any[]) => unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  end: (...args: any[]) => unknown;
}

function template(baseUrl: string | undefined, path: unknown): string | undefined {
  if (path === undefined || path === null) return undefined;
  const p = typeof path === 'string' ? path : Array.isArray(path) ? path.map(String).join(',') : String(path);
  const base = baseUrl ?? '';
  return base && p === '/' ? base : base + p;
}

/**
 * Express/Connect middleware that tracks every request: `route` (the template, e.g. `/big/:id`),
 * `method`, `status` and `duration_ms`. Register it before the routes.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createTally, expressMiddleware } from '@tally/client';
 *
 * const tally = createTally({ url: process.env.TALLY_URL!, key: process.env.TALLY_API_KEY! });
 * const app = express();
 * app.use(expressMiddleware(tally, { distinctId: (req) => req.headers['x-api-key'] as string }));
 * app.get('/big/:id', (req, res) => res.json({ id: req.params.id }));
 * ```
 */
export function expressMiddleware<Req extends ExpressRequestLike = ExpressRequestLike>(
  tally: Tally,
  options: MiddlewareOptions<Req>,
): (req: Req, res: ExpressResponseLike, next: (err?: unknown) => void) => void {
  const record = createRecorder(tally, options, 'expressMiddleware');
  const finish = (call: CallState, status: number): void => {
    call.done = true;
    const req = call.req as Req & Tagged;
    const route = req[TEMPLATE] ?? template(req.baseUrl, req.route?.path) ?? UNMATCHED_ROUTE;
    record(req, { route, method: req.method ?? 'GET', status, durationMs: performance.now() - call.start });
  };
  return function tallyExpressMiddleware(req, res, next) {
    try {
      const r = res as ExpressResponseLike & Tagged;
      r[CALL] = { req, start: performance.now(), done: false, finish: finish as CallState['finish'] };
      // Express gives every app its own request and response prototypes: hooks installed there once
      // cost a request nothing but a property read (a per-request accessor on req would cost Express
      // a slow path on every property it reads). Connect and plain node:http get per-request hooks.
      const reqProto = Object.getPrototypeOf(req) as Tagged | null;
      if (reqProto && reqProto[INSTALLED] !== true && hasOwn.call(reqProto, 'app')) captureRouteOn(reqProto);
      const resProto = Object.getPrototypeOf(res) as Tagged | null;
      if (resProto && hasOwn.call(resProto, 'app')) {
        if (resProto[INSTALLED] !== true) hookWriteHeadOnPrototype(resProto);
      } else hookWriteHeadOnInstance(r);
    } catch {
      /* never fail the request */
    }
    next();
  };
}

/** What one request's tracking needs, kept on its response under {@link CALL}. */
interface CallState {
  req: ExpressRequestLike;
  start: number;
  done: boolean;
  finish(call: CallState, status: number): void;
}

const CALL = Symbol.for('@tally/client.express.call');
const ROUTE = Symbol.for('@tally/client.express.route');
const TEMPLATE = Symbol.for('@tally/client.express.template');
const INSTALLED = Symbol.for('@tally/client.express.installed');
interface Tagged {
  [CALL]?: CallState;
  [ROUTE]?: ExpressRequestLike['route'];
  [TEMPLATE]?: string;
  [INSTALLED]?: boolean;
  writeHead?: (...args: unknown[]) => unknown;
  end?: (...args: unknown[]) => unknown;
}
const hasOwn = Object.prototype.hasOwnProperty;

/** Express assigns `req.route` when it dispatches to a route: the setter reads the mount path at that moment. */
function captureRouteOn(proto: Tagged): void {
  Object.defineProperty(proto, 'route', {
    configurable: true,
    enumerable: true,
    get(this: Tagged) {
      return this[ROUTE];
    },
    set(this: Tagged & ExpressRequestLike, v: ExpressRequestLike['route']) {
      this[ROUTE] = v;
      this[TEMPLATE] = template(this.baseUrl, v?.path);
    },
  });
  Object.defineProperty(proto, INSTALLED, { value: true });
}

/**
 * Every answer goes through writeHead (res.end and res.write call it implicitly, as on-headers relies
 * on), except one whose client has gone: Node then skips the head, but the app still calls res.end.
 */
function hooked(original: (...args: unknown[]) => unknown, isWriteHead: boolean) {
  return function tallyHook(this: Tagged & ExpressResponseLike, status: unknown) {
    const call = this[CALL];
    if (call !== undefined && !call.done) {
      try {
        call.finish(call, isWriteHead && typeof status === 'number' ? status : this.statusCode);
      } catch {
        /* never fail the request */
      }
    }
    // eslint-disable-next-line prefer-rest-params
    return original.apply(this, arguments as unknown as unknown[]);
  };
}

function hookWriteHeadOnPrototype(proto: Tagged): void {
  Object.defineProperty(proto, 'writeHead', { value: hooked(proto.writeHead!, true), writable: true, configurable: true });
  Object.defineProperty(proto, 'end', { value: hooked(proto.end!, false), writable: true, configurable: true });
  Object.defineProperty(proto, INSTALLED, { value: true });
}

function hookWriteHeadOnInstance(res: Tagged): void {
  res.writeHead = hooked(res.writeHead!, true);
  res.end = hooked(res.end!, false);
}
