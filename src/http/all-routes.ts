/**
 * One handler for every route of the table, for a front door that reaches a single function (the Lambda
 * Function URL, `frontDoor=function-url`): each request goes to the handler of the function the route
 * table names (src/http/route-table.ts), as API Gateway's routes would send it; anything else (CORS
 * preflights, unknown paths) to ingest, which answers them. The query handler is built on first use, so
 * ingest's cold start does not pay for it.
 */
import type { ApiHandler } from './handler';
import { matchRoute } from './route-table';

export function allRoutes(handlers: { ingest: ApiHandler; query: () => ApiHandler | Promise<ApiHandler> }): ApiHandler {
  let query: Promise<ApiHandler> | undefined;
  return async (event, context) => {
    if (matchRoute(event.requestContext.http.method, event.rawPath)?.fn === 'query') {
      query ??= Promise.resolve(handlers.query()).catch((err: unknown) => {
        query = undefined;
        throw err;
      });
      return (await query)(event, context);
    }
    return handlers.ingest(event, context);
  };
}
