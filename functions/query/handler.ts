/**
 * The query Lambda: `GET /v1/usage` (key required) and `GET /health`.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Logger } from '@aws-lambda-powertools/logger';
import { keyFromHeaders, createKeyChecker } from '../../src/ingest/auth';
import { NotFoundError } from '../../src/errors';
import { httpErrors } from '../../src/http/errors';
import { json } from '../../src/http/response';
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
      const path = event.rawPath.length > 1 && event.rawPath.endsWith('/') ? event.rawPath.slice(0, -1) : event.rawPath;
      const method = event.requestContext.http.method;
      if (method === 'GET' && path === '/health') return json(200, { status: 'ok' });
      if (method === 'GET' && path === '/v1/usage') {
        checkKey(keyFromHeaders(event.headers ?? {}));
        return json(200, await queryUsage(deps.store, event.queryStringParameters ?? {}, deps.now?.()));
      }
      throw new NotFoundError(`no route ${method} ${event.rawPath}`);
    }) as unknown as ApiHandler;
}
