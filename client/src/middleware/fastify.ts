/**
 * Fastify plugin: one `onSend` hook for the whole app (the plugin is not encapsulated, as
 * `fastify-plugin` would arrange, without depending on it). `onSend` runs for every reply, 404s and
 * errors included, before the answer is written: a client that got its answer was tracked.
 */
import type { Tally } from '../tally';
import { createRecorder, type MiddlewareOptions } from './shared';

/** The parts of a Fastify request the plugin reads. */
export interface FastifyRequestLike {
  method: string;
  routeOptions?: { url?: string };
  headers: Record<string, string | string[] | undefined>;
}

/** The parts of a Fastify reply the plugin reads. */
export interface FastifyReplyLike {
  statusCode: number;
}

/** A Fastify plugin (callback style), as `app.register()` takes it. */
export type FastifyPluginLike<Req> = (
  instance: {
    addHook(name: 'onRequest', hook: (request: Req, reply: FastifyReplyLike, done: () => void) => void): unknown;
    addHook(name: 'onSend', hook: (request: Req, reply: FastifyReplyLike, payload: unknown, done: (err: null, payload: unknown) => void) => void): unknown;
  },
  options: unknown,
  done: (err?: Error) => void,
) => void;

/**
 * Fastify plugin that tracks every request: `route` (the template, e.g. `/big/:id`, prefixes
 * included), `method`, `status` and `duration_ms`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createTally, fastifyPlugin } from '@tally/client';
 *
 * const tally = createTally({ url: process.env.TALLY_URL!, key: process.env.TALLY_API_KEY! });
 * const app = Fastify();
 * await app.register(fastifyPlugin(tally, { distinctId: (req) => req.headers['x-api-key'] as string }));
 * app.get('/big/:id', async (req) => ({ id: (req.params as { id: string }).id }));
 * ```
 */
export function fastifyPlugin<Req extends FastifyRequestLike = FastifyRequestLike>(tally: Tally, options: MiddlewareOptions<Req>): FastifyPluginLike<Req> {
  const record = createRecorder(tally, options, 'fastifyPlugin');
  // Fastify measures reply.elapsedTime only when a logger or an onResponse hook is set up.
  const starts = new WeakMap<object, number>();
  const plugin: FastifyPluginLike<Req> = (instance, _options, done) => {
    instance.addHook('onRequest', (request, _reply, next) => {
      starts.set(request, performance.now());
      next();
    });
    instance.addHook('onSend', (request, reply, payload, next) => {
      try {
        const start = starts.get(request);
        record(request, { route: request.routeOptions?.url, method: request.method, status: reply.statusCode, durationMs: start === undefined ? 0 : performance.now() - start });
      } finally {
        next(null, payload);
      }
    });
    done();
  };
  // What fastify-plugin sets: the hook applies to the whole app, not only to this plugin's scope.
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: '@tally/client' });
}
