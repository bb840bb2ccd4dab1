/**
 * The query Lambda: `GET /v1/usage` and `GET /v1/usage/users` (key required), and `GET /health`.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Logger } from '@aws-lambda-powertools/logger';
import { keyFromHeaders, createKeyChecker } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import { httpErrors } from '../../src/http/errors';
import { json } from '../../src/http/response';
import { breakdownCsv, queryBreakdown } from '../../src/query/breakdown';
import { queryUsage, type QueryConfig } from '../../src/query/query';
import type { ReadStore } from '../../src/store/types';
import type { ApiHandler } from '../ingest/handler';

export interface QueryHandlerDeps extends QueryConfig {
  store: ReadStore;
  apiKeys: readonly string[];
  logger?: Logger;
  now?: () => number;
}

export function createQueryHandler(deps: QueryHandlerDeps): ApiHandler {
  const checkKey = createKeyChecker(deps.apiKeys);
  const cfg: QueryConfig = { dimensions: deps.dimensions, shards: deps.shards };
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>({ timeoutEarlyInMillis: 0 })
    .use(httpErrors({ logger: deps.logger }))
    .handler(async (event) => {
      const path = event.rawPath.length > 1 && event.rawPath.endsWith('/') ? event.rawPath.slice(0, -1) : event.rawPath;
      const method = event.requestContext.http.method;
      if (method === 'GET' && path === '/health') return json(200, { status: 'ok' });
      const params = event.queryStringParameters ?? {};
      if (method === 'GET' && path === '/v1/usage') {
        checkKey(keyFromHeaders(event.headers ?? {}));
        return json(200, await queryUsage(deps.store, params, cfg, deps.now?.()));
      }
      if (method === 'GET' && path === '/v1/usage/users') {
        checkKey(keyFromHeaders(event.headers ?? {}));
        const a = await queryBreakdown(deps.store, params, cfg, deps.now?.());
        if (params.format !== 'csv') return json(200, a);
        const headers: Record<string, string> = { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${a.event.replace(/[^A-Za-z0-9_.-]/g, '_')}-${a.from.slice(0, 10)}.csv"` };
        if (a.nextCursor) headers['x-next-cursor'] = a.nextCursor;
        return { statusCode: 200, headers, body: breakdownCsv(a) };
      }
      throw new NotFoundError(`no route ${method} ${event.rawPath}`);
    }) as unknown as ApiHandler;
}
