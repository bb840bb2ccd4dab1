/**
 * Fastify plugin: one `onResponse` hook for the whole app (the plugin is not encapsulated, as
 * `fastify-plugin` would arrange, without depending on it).
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
  elapsedTime?: number;
}

/** A Fastify plugin (callback style), as `app.register()` takes it. */
export type FastifyPluginLike<Req> = (
  instance: { addHook(name: 'onResponse', hook: (request: Req, reply: FastifyReplyLike, done: () => void) => void): unknown },
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
  const plugin: FastifyPluginLike<Req> = (instance, _options, done) => {
    instance.addHook('onResponse', (request, reply, next) => {
      try {
        record(request, { route: request.routeOptions?.url, method: request.method, status: reply.statusCode, durationMs: reply.elapsedTime ?? 0 });
      } finally {
        next();
      }
    });
    done();
  };
  // What fastify-plugin sets: the hook applies to the whole app, not only to this plugin's scope.
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: '@tally/client' });
}
