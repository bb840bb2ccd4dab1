/**
 * PostHog's flag routes on tally's host, so an app that points its whole PostHog client at tally keeps
 * working feature flags: `POST /flags` (remote evaluation), `GET /flags/definitions` (local evaluation),
 * `POST /decide` (older SDKs), each with or without the trailing slash.
 *
 * Such a client presents a tally API key (or client token) as its project key; the proxy checks it like the
 * capture routes do (the body's `token`/`api_key`, the query's `token`, or `Authorization: Bearer`) and
 * swaps in the PostHog project key before forwarding: the key's project's own PostHog (`projects create
 * --posthog-key --posthog-host`), else the deployment's; neither → 503 `flags_unavailable`. The body is
 * decoded the way capture bodies are (gzip by magic bytes, base64, `data=` forms) and forwarded as plain JSON; the
 * query string goes along without `compression`. `Authorization` (the client's own personal or secret
 * key, for `/flags/definitions`), `If-None-Match` and `User-Agent` are forwarded; PostHog's status, body,
 * `Content-Type` and `ETag` come back. One attempt, bounded by `timeoutMs`: 504 on timeout, 502 when
 * PostHog cannot be reached.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { BadRequestError, HttpError, UnauthorizedError } from '../errors';
import { keyFromHeaders } from '../ingest/auth';
import { decodeBody } from '../ingest/decode';
import { matchRoute } from './route-table';

export type FlagRoute = 'flags' | 'decide' | 'definitions';

const FLAG_KINDS: ReadonlySet<string> = new Set<FlagRoute>(['flags', 'decide', 'definitions']);

/** The flag route of a method and path (src/http/route-table.ts; a trailing slash is ignored, as PostHog does). */
export function matchFlagRoute(method: string, path: string): FlagRoute | undefined {
  const r = matchRoute(method, path);
  return r !== undefined && FLAG_KINDS.has(r.kind) ? (r.kind as FlagRoute) : undefined;
}

/** Upstream paths, in the form PostHog's SDKs use. */
const UPSTREAM_PATH: Record<FlagRoute, string> = { flags: '/flags/', decide: '/decide/', definitions: '/flags/definitions' };

export type FlagProxy = (event: APIGatewayProxyEventV2, route: FlagRoute) => Promise<APIGatewayProxyStructuredResultV2>;

/** Checks the presented credential (and the request's `Origin`); resolves to its project (whose own PostHog, if any, is used). */
export type FlagAuthenticate = (credential: string | undefined, origin: string | undefined) => Promise<{ project: { posthog?: { key: string; host: string } } }>;

export interface FlagProxyOptions {
  authenticate: FlagAuthenticate;
  /** The deployment's PostHog host, for projects without their own. */
  host?: string;
  /** The deployment's PostHog project key, which replaces the tally key the client presented. */
  projectKey?: string;
  /** Bound of one forwarded request. */
  timeoutMs: number;
  /** Largest request body after decoding. */
  maxBodyBytes?: number;
  fetch?: typeof fetch;
}

/** PostHog could not answer in time (504 `posthog_timeout`), or at all (502 `posthog_unreachable`). */
export class UpstreamError extends HttpError {
  constructor(status: 502 | 504, message: string) {
    super(status === 504 ? 'posthog_timeout' : 'posthog_unreachable', message);
  }
}

/** No PostHog is configured for ingest: the flag routes answer 503. */
export const unavailableFlagProxy: FlagProxy = async () => {
  throw new HttpError('flags_unavailable', 'feature flags are not proxied: PostHog is not configured for ingest (docs/SAMPLING.md)');
};

const FORWARD_HEADERS = ['authorization', 'if-none-match', 'user-agent'];
const RETURN_HEADERS = ['content-type', 'etag', 'cache-control'];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const noPostHog = (): never => {
  throw new HttpError('flags_unavailable', 'feature flags are not proxied: PostHog is not configured for this project or for ingest (docs/SAMPLING.md)');
};

export function createFlagProxy(o: FlagProxyOptions): FlagProxy {
  const fallback = o.host !== undefined && o.projectKey !== undefined ? { host: o.host, key: o.projectKey } : undefined;
  const doFetch = o.fetch ?? fetch;
  const maxBody = o.maxBodyBytes ?? 1024 * 1024;

  return async (event, route) => {
    const headers = event.headers ?? {};
    const query = new URLSearchParams(event.rawQueryString ?? '');
    query.delete('compression');
    const forward: Record<string, string> = {};
    for (const h of FORWARD_HEADERS) if (headers[h] !== undefined) forward[h] = headers[h]!;

    let body: string | undefined;
    let dest: { host: string; key: string };
    if (route === 'definitions') {
      const token = query.get('token') ?? query.get('api_key') ?? undefined;
      if (token === undefined) throw new UnauthorizedError('missing API key: pass the tally API key as token');
      dest = (await o.authenticate(token, headers.origin)).project.posthog ?? fallback ?? noPostHog();
      query.set('token', dest.key);
      query.delete('api_key');
    } else {
      const parsed = decodeBody(
        { body: event.body, isBase64Encoded: event.isBase64Encoded, compression: event.queryStringParameters?.compression },
        maxBody,
      );
      if (!isRecord(parsed)) throw new BadRequestError('expected a JSON object');
      const token = typeof parsed.token === 'string' ? parsed.token : typeof parsed.api_key === 'string' ? parsed.api_key : keyFromHeaders(headers);
      dest = (await o.authenticate(token, headers.origin)).project.posthog ?? fallback ?? noPostHog();
      const out: Record<string, unknown> = { ...parsed, token: dest.key };
      if ('api_key' in parsed) out.api_key = dest.key;
      body = JSON.stringify(out);
      forward['content-type'] = 'application/json';
      // The tally key is no business of PostHog's.
      if (forward.authorization !== undefined && keyFromHeaders({ authorization: forward.authorization }) === token) delete forward.authorization;
    }

    const qs = query.toString().replace(/=(?=&|$)/g, '');
    const url = `${dest.host.replace(/\/+$/, '')}${UPSTREAM_PATH[route]}${qs ? `?${qs}` : ''}`;
    let res: Response;
    let text: string;
    try {
      res = await doFetch(url, { method: route === 'definitions' ? 'GET' : 'POST', headers: forward, body, signal: AbortSignal.timeout(o.timeoutMs) });
      text = await res.text();
    } catch (err) {
      const name = (err as Error)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') throw new UpstreamError(504, `PostHog did not answer within ${o.timeoutMs} ms`);
      throw new UpstreamError(502, `PostHog is unreachable: ${(err as Error)?.message ?? String(err)}`);
    }
    const out: Record<string, string> = {};
    for (const h of RETURN_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) out[h] = v;
    }
    out['content-type'] ??= 'application/json';
    return { statusCode: res.status, headers: out, body: text };
  };
}
