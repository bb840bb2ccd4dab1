/**
 * Hono middleware. After `next()`, Hono's `c.req.routePath` is the path of the handler that answered
 * (`/big/:id`); if no handler ran after this middleware, the request matched no route.
 */
import type { Tally } from '../tally';
import { createRecorder, type MiddlewareOptions } from './shared';

/** The parts of a Hono context the middleware reads. */
export interface HonoContextLike {
  req: { method: string; routeIndex?: number; readonly routePath?: string; header(name: string): string | undefined };
  res: { status: number };
}

/**
 * Hono middleware that tracks every request: `route` (the template, e.g. `/big/:id`), `method`,
 * `status` and `duration_ms`. Works wherever Hono runs (Node, Bun, Deno, Workers, Lambda).
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { createTally, honoMiddleware } from '@tally/client';
 *
 * const tally = createTally({ url: process.env.TALLY_URL!, key: process.env.TALLY_API_KEY! });
 * const app = new Hono();
 * app.use(honoMiddleware(tally, { distinctId: (c) => c.req.header('x-api-key') }));
 * app.get('/big/:id', (c) => c.json({ id: c.req.param('id') }));
 * ```
 */
export function honoMiddleware<C extends HonoContextLike = HonoContextLike>(tally: Tally, options: MiddlewareOptions<C>): (c: C, next: () => Promise<void>) => Promise<void> {
  const record = createRecorder(tally, options, 'honoMiddleware');
  return async function tallyHonoMiddleware(c, next) {
    const start = performance.now();
    const own = c.req.routeIndex;
    let threw = true;
    try {
      await next();
      threw = false;
    } finally {
      let route: string | undefined;
      let status = 500;
      try {
        // Hono ≥ 4 keeps the index of the handler that ran last; ours means nothing matched after us.
        if (c.req.routeIndex !== own) route = c.req.routePath;
        if (!threw) status = c.res.status;
      } catch {
        /* an older or newer Hono: unmatched */
      }
      record(c, { route, method: c.req.method, status, durationMs: performance.now() - start });
    }
  };
}
