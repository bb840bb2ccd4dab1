/**
 * The seed tutorial's API (an Express app whose `/big/:id` route does a bit of work), tracked in tally
 * with one `app.use`. Without a client it is the same app, untracked: the benchmark compares the two.
 */
import { createHash } from 'node:crypto';
import express, { type Express } from 'express';
// In your project: import { expressMiddleware, type Tally } from '@tally/client';
import { expressMiddleware, type Tally } from '../../client/src';

/** "A bit of work": 20 rounds of SHA-256 over the id (~20 µs). */
export function work(id: string): string {
  let h = id;
  for (let i = 0; i < 20; i++) h = createHash('sha256').update(h).digest('hex');
  return h;
}

/**
 * The API. With `tally`, every request is tracked: who (the id in the path, as in the tutorial; in a
 * real API, the owner of the caller's API key), the event (`big_route` for `/big/:id`, as the tutorial
 * names it), and route template, method, status and duration.
 *
 * @example
 * ```ts
 * const tally = createTally({ url: 'http://127.0.0.1:3000', key: process.env.TALLY_API_KEY! });
 * createApp(tally).listen(8080);
 * ```
 */
export function createApp(tally?: Tally): Express {
  const app = express();
  if (tally) {
    app.use(
      expressMiddleware<express.Request>(tally, {
        distinctId: (req) => req.params?.id?.toString() ?? req.get('x-user-id') ?? 'anonymous',
        event: (req) => (req.route?.path === '/big/:id' ? 'big_route' : 'api_call'),
      }),
    );
  }
  app.get('/', (_req, res) => {
    res.send('Hello World!');
  });
  app.get('/big/:id', (req, res) => {
    res.send(`Welcome to the big route, ${req.params.id} (${work(req.params.id).slice(0, 8)})`);
  });
  return app;
}
