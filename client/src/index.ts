/**
 * @tally/client: track every call of an API in tally with one line.
 *
 * `createTally()` batches, gzips and retries (same uuids, so tally counts a retry once), within a
 * memory bound, optionally spooled to disk; the middleware for Express/Connect, Fastify, Hono and
 * middy records `route` (the template), `method`, `status` and `duration_ms` for each request.
 *
 * @packageDocumentation
 */
export { createTally, consoleReporter, tallyDefaults, usageEndpoint, MAX_FLUSH_AT } from './tally';
export type { Tally, TallyOptions, TallyStats, FlushResult } from './tally';
export type { TrackEvent } from './event';
export { TallyError } from './errors';
export type { TallyErrorCode } from './errors';
export { backoffDelay, parseRetryAfter } from './backoff';
export { uuidv7 } from './uuid';
export type { FetchLike } from './platform';
export type { Compression } from './send';
export { UNMATCHED_ROUTE } from './middleware/shared';
export type { MiddlewareOptions, CallInfo } from './middleware/shared';
export { expressMiddleware } from './middleware/express';
export type { ExpressRequestLike, ExpressResponseLike } from './middleware/express';
export { fastifyPlugin } from './middleware/fastify';
export type { FastifyPluginLike, FastifyRequestLike, FastifyReplyLike } from './middleware/fastify';
export { honoMiddleware } from './middleware/hono';
export type { HonoContextLike } from './middleware/hono';
export { middyMiddleware, middyMiddlewareDefaults } from './middleware/middy';
export type { ApiGatewayEventLike, LambdaContextLike, MiddyMiddlewareOptions, MiddyRequestLike } from './middleware/middy';
