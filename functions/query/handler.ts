/**
 * The query Lambda: its routes of src/http/route-table.ts — `GET /v1/usage` (key required),
 * `GET /v1/usage/users` (key required) and `GET /health`.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Logger } from '@aws-lambda-powertools/logger';
import { keyFromHeaders, createKeyChecker } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import { httpErrors } from '../../src/http/errors';
import { json } from '../../src/http/response';
import { matchRoute } from '../../src/http/route-table';
import { queryUsage } from '../../src/query/query';
import type { UsageStore } from '../../src/store/types';
import type { ApiHandler } from '../ingest/handler';

export interface QueryHandlerDeps {
  store: UsageStore;
  apiKeys: readonly string[];
  logger?: Logger;
  now?: () => number;
}

export function createQueryHandler(deps: QueryHandlerDeps): ApiHandler {
  const checkKey = createKeyChecker(deps.apiKeys);
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>({ timeoutEarlyInMillis: 0 })
    .use(httpErrors({ logger: deps.logger }))
    .handler(async (event) => {
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
    }) as unknown as ApiHandler;
}
