/**
 * Every HTTP route tally serves, in one place: method, path, the function that serves it and what it is.
 * The ingest pipeline, the flag proxy, the query handler, the local front (`npm start`) and the CDK stack
 * (API Gateway routes, or the Function URL front door) all read this table, and test/unit/route-table.test.ts
 * checks that they agree.
 *
 * Paths are matched the way PostHog's capture matches them: a trailing slash is ignored (src/http/routes.ts).
 * API Gateway route keys cannot end in `/`, so every route is also declared as `<path>/{proxy+}`, which
 * catches `<path>/` (and anything deeper, which the function answers 404).
 */
import { routeMatcher } from './routes';

/** The Lambda function that serves a route. */
export type RouteFunction = 'ingest' | 'query';

/** What a route is, for the code that serves it. */
export type RouteKind =
  // ingest: counted usage
  | 'native'
  | 'posthog'
  | 'posthog-batch'
  // ingest: client tokens (src/ingest/tokens.ts)
  | 'tokens'
  // ingest: PostHog feature flags, forwarded (src/http/flag-proxy.ts)
  | 'flags'
  | 'decide'
  | 'definitions'
  // query
  | 'usage'
  | 'usage-users'
  | 'usage-events'
  | 'health';

/** One route of the table. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  /** Without a trailing slash. */
  readonly path: string;
  readonly fn: RouteFunction;
  readonly kind: RouteKind;
}

/** The capture routes of PostHog's ingestion API that tally accepts (PostHog also serves `/engage`). */
export const POSTHOG_CAPTURE_PATHS = ['/batch', '/capture', '/e', '/i/v0/e', '/track'] as const;

/** Every route. Order is documentation only. */
export const ROUTES: readonly RouteSpec[] = [
  // tally's own API
  { method: 'POST', path: '/v1/usage', fn: 'ingest', kind: 'native' },
  { method: 'POST', path: '/v1/tokens', fn: 'ingest', kind: 'tokens' },
  { method: 'GET', path: '/v1/usage', fn: 'query', kind: 'usage' },
  { method: 'GET', path: '/v1/usage/users', fn: 'query', kind: 'usage-users' },
  { method: 'GET', path: '/v1/usage/events', fn: 'query', kind: 'usage-events' },
  { method: 'GET', path: '/health', fn: 'query', kind: 'health' },
  // PostHog capture (an unmodified PostHog SDK pointed at tally)
  { method: 'POST', path: '/batch', fn: 'ingest', kind: 'posthog-batch' },
  { method: 'POST', path: '/capture', fn: 'ingest', kind: 'posthog' },
  { method: 'POST', path: '/e', fn: 'ingest', kind: 'posthog' },
  { method: 'POST', path: '/i/v0/e', fn: 'ingest', kind: 'posthog' },
  { method: 'POST', path: '/track', fn: 'ingest', kind: 'posthog' },
  // PostHog feature flags: remote evaluation, local-evaluation definitions, the older /decide
  { method: 'POST', path: '/flags', fn: 'ingest', kind: 'flags' },
  { method: 'GET', path: '/flags/definitions', fn: 'ingest', kind: 'definitions' },
  { method: 'POST', path: '/decide', fn: 'ingest', kind: 'decide' },
];

const byKey: Record<string, RouteSpec> = Object.fromEntries(ROUTES.map((r) => [`${r.method} ${r.path}`, r]));
const match = routeMatcher(byKey);

/** The route of a method and path (trailing slash ignored), or `undefined`. */
export function matchRoute(method: string, path: string): RouteSpec | undefined {
  return match(method, path);
}

/** True when some route has this path (any method): the path exists, so CORS preflights are answered. */
export function isKnownPath(path: string): boolean {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return ROUTES.some((r) => r.path === p);
}

/** The routes one function serves. */
export function routesOf(fn: RouteFunction): RouteSpec[] {
  return ROUTES.filter((r) => r.fn === fn);
}

/**
 * API Gateway HTTP API route keys of a route: `METHOD /path` and `METHOD /path/{proxy+}` (which catches
 * the trailing slash). The CDK stack declares exactly these; the local front routes by them too.
 */
export function apiGatewayRouteKeys(r: RouteSpec): [string, string] {
  return [`${r.method} ${r.path}`, `${r.method} ${r.path}/{proxy+}`];
}

/**
 * CORS preflights, answered by ingest (src/http/cors.ts): allowed origins are per project and change
 * without a deploy, so API Gateway's own `corsPreflight` (fixed at deploy time) cannot answer them.
 */
export const PREFLIGHT_ROUTE_KEY = 'OPTIONS /{proxy+}';

/** Every API Gateway route key of the table (and the preflight route), mapped to the function it invokes. */
export function apiGatewayRoutes(): Map<string, RouteFunction> {
  const out = new Map<string, RouteFunction>();
  for (const r of ROUTES) for (const k of apiGatewayRouteKeys(r)) out.set(k, r.fn);
  out.set(PREFLIGHT_ROUTE_KEY, 'ingest');
  return out;
}
