/**
 * The one way tally's HTTP functions (ingest, query) become Lambda handlers: middy with Powertools'
 * `injectLambdaContext` (request id and cold start in every log line) and `logMetrics` (EMF flushed after
 * each invocation, only when a metric was added), CORS (./cors.ts), the error table's answers and counts
 * (./errors.ts), and the invocation's deadline (src/util/deadline.ts) set from
 * `context.getRemainingTimeInMillis()` minus the time kept for answering, so every network call inside
 * is bounded by it and the function answers its own JSON before Lambda's timeout.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { invocationDeadline, withDeadline } from '../util/deadline';
import { cors, type CorsPolicy } from './cors';
import { httpErrors } from './errors';

export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

export interface HttpHandlerOptions {
  /** A Powertools logger gets the Lambda context injected; anything else with `warn`/`error` only logs. */
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** Flushed by `logMetrics` after each invocation. */
  metrics?: Metrics;
  /** Browser origins allowed to call (./cors.ts). Unset: no CORS headers. */
  cors?: CorsPolicy;
  /** Kept free before the Lambda timeout for writing the answer: the deadline is remaining time minus this. */
  answerReserveMs: number;
}


/** `serve` as a Lambda handler with the middlewares above. */
export function httpHandler(serve: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>, o: HttpHandlerOptions): ApiHandler {
  const h = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>({ timeoutEarlyInMillis: 0 });
  if (o.logger instanceof Logger) h.use(injectLambdaContext(o.logger));
  if (o.metrics instanceof Metrics) h.use(logMetrics(o.metrics));
  h.use(cors(o.cors)).use(httpErrors({ logger: o.logger, metrics: o.metrics }));
  return h.handler((event, context) => withDeadline(invocationDeadline(context, o.answerReserveMs), () => serve(event))) as unknown as ApiHandler;
}
