/**
 * The ingest Lambda: the ingest service (src/ingest/service.ts: counting routes, flag routes, sampling
 * after the queue) wrapped by src/http/handler.ts (Powertools context and metrics, CORS, the error table,
 * the invocation's deadline). The same factory serves Lambda (index.ts), `npm start` and the tests, each
 * with its own queue.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { OriginRules } from '../../src/http/cors';
import { httpHandler, type ApiHandler } from '../../src/http/handler';
import { createIngestService, type IngestServiceDeps } from '../../src/ingest/service';

export type { ApiHandler };

export interface IngestHandlerDeps extends Omit<IngestServiceDeps, 'logger' | 'metrics'> {
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * Time kept for answering before the invocation's timeout: SQS sends, the raw capture of sampled events
 * and the flag proxy all end by then, so a hanging dependency gets tally's own 503 JSON rather than
 * API Gateway's 5xx for a timed-out function.
 */
export const INGEST_ANSWER_RESERVE_MS = 1000;

export function createIngestHandler(deps: IngestHandlerDeps): ApiHandler {
  // One set of origin rules for the preflights and answer headers (the middleware) and the per-project check (the service).
  const cors = deps.cors ?? new OriginRules([]);
  return httpHandler(createIngestService({ ...deps, cors }), { logger: deps.logger, metrics: deps.metrics, cors, answerReserveMs: INGEST_ANSWER_RESERVE_MS });
}
