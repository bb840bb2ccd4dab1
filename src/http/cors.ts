/**
 * CORS, once, as a middy middleware: browsers (posthog-js, a dashboard) may call tally's routes from the
 * origins of one deployment-wide allow-list (`TALLY_CORS_ORIGINS`; default none). The same list configures
 * the front door in the CDK stack (HTTP API `corsPreflight`, or the Function URL's `cors`), which answers
 * preflights there before a function runs; this middleware answers them in the local front and adds the
 * headers to every answer, errors included. A per-project list (issue 9) replaces {@link CorsPolicy.allows}.
 *
 * - Preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): 204; with the allow headers
 *   when the origin is allowed, without them otherwise (the browser then refuses the call).
 * - Any other request from an allowed `Origin`: `Access-Control-Allow-Origin: <origin>` and `Vary: Origin`.
 * - No credentials (cookies) are ever allowed: keys travel in headers or bodies.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** Methods browsers may use. */
export const CORS_ALLOW_METHODS = ['GET', 'POST', 'OPTIONS'] as const;
/** Request headers browsers may send: what tally reads, and what PostHog SDKs send. */
export const CORS_ALLOW_HEADERS = ['authorization', 'content-type', 'content-encoding', 'idempotency-key', 'x-api-key'] as const;
/** Answer headers scripts may read. */
export const CORS_EXPOSE_HEADERS = ['retry-after'] as const;
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;

/** Who may call from a browser. */
export interface CorsPolicy {
  /** `Access-Control-Allow-Origin` for this origin, or `undefined` when it is not allowed. */
  allows(origin: string): string | undefined;
}

/** The deployment-wide allow-list: exact origins (`https://app.example.com`), or `*` for any. */
export function originAllowList(origins: readonly string[]): CorsPolicy {
  const any = origins.includes('*');
  const set = new Set(origins.map((o) => o.toLowerCase()));
  return { allows: (origin) => (any ? '*' : set.has(origin.toLowerCase()) ? origin : undefined) };
}

type Result = APIGatewayProxyStructuredResultV2;

function withHeaders(res: Result | null | undefined, extra: Record<string, string>): void {
  if (res === undefined || res === null) return;
  res.headers = { ...res.headers, ...extra };
}

/** The middleware; without origins it does nothing (no answer carries CORS headers). */
export function cors(policy: CorsPolicy | undefined): MiddlewareObj<APIGatewayProxyEventV2, Result> {
  const headersFor = (event: APIGatewayProxyEventV2): Record<string, string> | undefined => {
    const origin = event.headers?.origin;
    if (!policy || origin === undefined) return undefined;
    const allowed = policy.allows(origin);
    if (allowed === undefined) return undefined;
    return { 'access-control-allow-origin': allowed, vary: 'origin', 'access-control-expose-headers': CORS_EXPOSE_HEADERS.join(',') };
  };
  const after = (request: { event: APIGatewayProxyEventV2; response?: Result | null }) => {
    const h = headersFor(request.event);
    if (h) withHeaders(request.response, h);
  };
  return {
    before: (request) => {
      const e = request.event;
      if (e.requestContext.http.method !== 'OPTIONS' || !policy) return undefined;
      const h = headersFor(e);
      const answer: Result = { statusCode: 204, headers: { vary: 'origin' }, body: '' };
      if (h) {
        answer.headers = {
          ...h,
          'access-control-allow-methods': CORS_ALLOW_METHODS.join(','),
          'access-control-allow-headers': CORS_ALLOW_HEADERS.join(','),
          'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
        };
      }
      return answer;
    },
    after,
    onError: after,
  };
}
