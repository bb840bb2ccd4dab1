/**
 * Express / Connect middleware. The route template is taken at the moment Express matches a route
 * (`req.baseUrl` + the route's path, so `/sub` + `/x/:id`), because Express restores `req.baseUrl` when
 * an error leaves a router; the event is recorded when the response closes.
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

/** The parts of a response the middleware reads. */
export interface ExpressResponseLike {
  statusCode: number;
  writableFinished?: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** Status recorded for a request whose client went away before the response was complete (nginx's convention). */
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
      res.once('close', () =>
        record(req, {
          route: route ?? UNMATCHED_ROUTE,
          method: req.method ?? 'GET',
          status: res.writableFinished === false ? CLIENT_CLOSED_STATUS : res.statusCode,
          durationMs: performance.now() - start,
        }),
      );
    } catch {
      /* never fail the request */
    }
    next();
  };
}
