/**
 * The query Lambda: its routes of src/http/route-table.ts — `GET /v1/usage` (key required),
 * `GET /v1/usage/users` (key required) and `GET /health`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { keyFromHeaders, createKeyChecker } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import type { CorsPolicy } from '../../src/http/cors';
import { httpHandler, type ApiHandler } from '../../src/http/handler';
import { json } from '../../src/http/response';
import { matchRoute } from '../../src/http/route-table';
import { queryUsage } from '../../src/query/query';
import type { UsageStore } from '../../src/store/types';

export interface QueryHandlerDeps {
  store: UsageStore;
  apiKeys: readonly string[];
  logger?: Logger;
  metrics?: Metrics;
  /** Browser origins allowed to call. Unset: none. */
  cors?: CorsPolicy;
  now?: () => number;
}

/** Time kept for answering before the invocation's timeout (DynamoDB reads end by then). */
export const QUERY_ANSWER_RESERVE_MS = 1000;

export function createQueryHandler(deps: QueryHandlerDeps): ApiHandler {
  const checkKey = createKeyChecker(deps.apiKeys);
  return httpHandler(
    async (event) => {
      const method = event.requestContext.http.method;
      const route = matchRoute(method, event.rawPath);
      switch (route?.fn === 'query' ? route.kind : undefined) {
        case 'health':
          return json(200, { status: 'ok' });
        case 'usage':
          checkKey(keyFromHeaders(event.headers ?? {}));
          return json(200, await queryUsage(deps.store, event.queryStringParameters ?? {}, deps.now?.()));
        case 'usage-users':
          checkKey(keyFromHeaders(event.headers ?? {}));
          // The per-user breakdown (issue 8) is not served yet.
          throw new NotFoundError(`${method} ${event.rawPath} is not served yet`);
        default:
          throw new NotFoundError(`no route ${method} ${event.rawPath}`);
      }
    },
    { logger: deps.logger, metrics: deps.metrics, cors: deps.cors, answerReserveMs: QUERY_ANSWER_RESERVE_MS },
  );
}
