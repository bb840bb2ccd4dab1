/**
 * The query Lambda: its routes of src/http/route-table.ts — `GET /v1/usage`, `GET /v1/usage/users` and
 * `GET /v1/usage/events` (a key with the `query` or `admin` scope; each answers for the key's project
 * only) and `GET /health`.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { keyFromHeaders } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import { OriginRules } from '../../src/http/cors';
import { httpHandler, type ApiHandler } from '../../src/http/handler';
import { json } from '../../src/http/response';
import { matchRoute } from '../../src/http/route-table';
import type { Authenticator } from '../../src/projects/auth';
import { breakdownCsv, queryBreakdown } from '../../src/query/breakdown';
import { queryEvents } from '../../src/query/events';
import { queryUsage, type QueryConfig } from '../../src/query/query';
import type { ReadStore } from '../../src/store/types';

export interface QueryHandlerDeps extends QueryConfig {
  store: ReadStore;
  /** Who a request is (src/projects/auth.ts, built by src/runtime/projects.ts). */
  auth: Pick<Authenticator, 'authenticate'>;
  logger?: Logger;
  metrics?: Metrics;
  /** Which browser origins each project allows (src/http/cors.ts). Unset: none. */
  cors?: OriginRules;
  now?: () => number;
}

/** Time kept for answering before the invocation's timeout (DynamoDB reads end by then). */
export const QUERY_ANSWER_RESERVE_MS = 1000;

export function createQueryHandler(deps: QueryHandlerDeps): ApiHandler {
  const cfg: QueryConfig = { dimensions: deps.dimensions, shards: deps.shards };
  const cors = deps.cors ?? new OriginRules([]);
  /** The project of the request's key, which must be allowed to read usage (and come from an origin the project allows). */
  const projectOf = async (event: APIGatewayProxyEventV2): Promise<string> => {
    const headers = event.headers ?? {};
    const { project } = await deps.auth.authenticate(keyFromHeaders(headers), 'query');
    cors.assertAllowed(project, headers.origin);
    return project.id;
  };
  return httpHandler(
    async (event) => {
      const method = event.requestContext.http.method;
      const route = matchRoute(method, event.rawPath);
      switch (route?.fn === 'query' ? route.kind : undefined) {
        case 'health':
          return json(200, { status: 'ok' });
        case 'usage': {
          const project = await projectOf(event);
          return json(200, await queryUsage(deps.store, event.queryStringParameters ?? {}, cfg, deps.now?.(), project));
        }
        case 'usage-events': {
          const project = await projectOf(event);
          return json(200, await queryEvents(deps.store, event.queryStringParameters ?? {}, deps.now?.(), project));
        }
        case 'usage-users': {
          const project = await projectOf(event);
          const params = event.queryStringParameters ?? {};
          const a = await queryBreakdown(deps.store, params, cfg, deps.now?.(), project);
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
    { logger: deps.logger, metrics: deps.metrics, cors, answerReserveMs: QUERY_ANSWER_RESERVE_MS },
  );
}
