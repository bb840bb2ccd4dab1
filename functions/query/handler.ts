/**
 * The query Lambda: its routes of src/http/route-table.ts — `GET /v1/usage` (key required),
 * `GET /v1/usage/users` and `GET /v1/usage/events` (key required) and `GET /health`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { keyFromHeaders, createKeyChecker } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import type { CorsPolicy } from '../../src/http/cors';
import { httpHandler, type ApiHandler } from '../../src/http/handler';
import { json } from '../../src/http/response';
import { matchRoute } from '../../src/http/route-table';
import { breakdownCsv, queryBreakdown } from '../../src/query/breakdown';
import { queryEvents } from '../../src/query/events';
import { queryUsage, type QueryConfig } from '../../src/query/query';
import type { ReadStore } from '../../src/store/types';

export interface QueryHandlerDeps extends QueryConfig {
  store: ReadStore;
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
  const cfg: QueryConfig = { dimensions: deps.dimensions, shards: deps.shards };
  return httpHandler(
    async (event) => {
      const method = event.requestContext.http.method;
      const route = matchRoute(method, event.rawPath);
      switch (route?.fn === 'query' ? route.kind : undefined) {
        case 'health':
          return json(200, { status: 'ok' });
        case 'usage':
          checkKey(keyFromHeaders(event.headers ?? {}));
          return json(200, await queryUsage(deps.store, event.queryStringParameters ?? {}, cfg, deps.now?.()));
        case 'usage-events':
          checkKey(keyFromHeaders(event.headers ?? {}));
          return json(200, await queryEvents(deps.store, event.queryStringParameters ?? {}, deps.now?.()));
        case 'usage-users': {
          checkKey(keyFromHeaders(event.headers ?? {}));
          const params = event.queryStringParameters ?? {};
          const a = await queryBreakdown(deps.store, params, cfg, deps.now?.());
          if (params.format !== 'csv') return json(200, a);
          const headers: Record<string, string> = {
            'content-type': 'text/csv; charset=utf-8',
            'content-disposition': `attachment; filename="${a.event.replace(/[^A-Za-z0-9_.-]/g, '_')}-${a.from.slice(0, 10)}.csv"`,
          };
          if (a.nextCursor) headers['x-next-cursor'] = a.nextCursor;
          return { statusCode: 200, headers, body: breakdownCsv(a) };
        }
        default:
          throw new NotFoundError(`no route ${method} ${event.rawPath}`);
      }
    },
    { logger: deps.logger, metrics: deps.metrics, cors: deps.cors, answerReserveMs: QUERY_ANSWER_RESERVE_MS },
  );
}
