/**
 * Express / Connect middleware. The route template is taken at the moment Express matches a route
 * (`req.baseUrl` + the route's path, so `/sub` + `/x/:id`), because Express restores `req.baseUrl` when
 * an error leaves a router. The call is tracked when the response head is written, before any byte of
 * the answer leaves: a client that got its answer was tracked (with a spool, even if the process is
 * killed right after). A request whose client went away before any answer is tracked when it closes,
 * with status 499.
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

/** The parts of a response the middleware reads (and `writeHead`, which it wraps). */
export interface ExpressResponseLike {
  statusCode: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  writeHead: (...args: any[]) => unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** Status recorded for a request whose client went away before any answer was written (nginx's convention). */
export const CLIENT_CLOSED_STATUS = 499;

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
  return function tallyExpressMiddleware(req, res, next) {
    const start = performance.now();
    let route: string | undefined;
    let done = false;
    const track = (status: number): void => {
      if (done) return;
      done = true;
      record(req, { route: route ?? UNMATCHED_ROUTE, method: req.method ?? 'GET', status, durationMs: performance.now() - start });
    };
    try {
      let current = req.route;
      // Express assigns req.route when it dispatches to a route: read the mount path at that moment.
      Object.defineProperty(req, 'route', {
        configurable: true,
        enumerable: true,
        get: () => current,
        set: (v: ExpressRequestLike['route']) => {
          current = v;
          route = template(req.baseUrl, v?.path);
        },
      });
      // Every answer goes through writeHead (res.end/res.write call it implicitly), as on-headers relies on.
      const writeHead = res.writeHead;
      res.writeHead = function tallyWriteHead(this: unknown, ...args: unknown[]) {
        track(typeof args[0] === 'number' ? args[0] : res.statusCode);
        return writeHead.apply(this, args);
      };
      res.once('close', () => track(CLIENT_CLOSED_STATUS));
    } catch {
      /* never fail the request */
    }
    next();
  };
}
