/**
 * A small HTTP front that plays API Gateway HTTP API (payload format 2.0) in front of a Lambda handler:
 * each request becomes an `APIGatewayProxyEventV2`, and the handler's result is written back the way
 * API Gateway does it. node:http only; kept lean because the local stack is benchmarked through it.
 */
import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';

/** API Gateway's request payload limit (10 MB). */
export const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/**
 * Lambda's synchronous invocation payload limit: the event JSON, body (base64 for binary bodies), headers
 * and request context included, at most 6,291,456 bytes. A larger event never reaches the function: API
 * Gateway answers 413 itself, so tally's own 413 applies only below this.
 */
export const LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

/** What a route handler may return; `undefined` means "no such route" (404). */
export type RouteResult = APIGatewayProxyResultV2<Record<string, unknown>> | undefined;

/** The Lambda handler behind the front. */
export type RouteHandler = (event: APIGatewayProxyEventV2) => Promise<RouteResult> | RouteResult;

/** Fields of the event that come from the API's configuration rather than from the request. */
export interface EventOptions {
  /** Matched route key, e.g. `POST /v1/events`; `$default` when routes are not declared. */
  routeKey?: string;
  /** Values of `{name}` / `{proxy+}` segments of the matched route. */
  pathParameters?: Record<string, string>;
  accountId?: string;
  apiId?: string;
  stage?: string;
  /** Local port, reported as `x-forwarded-port`. */
  port?: number;
}

export const eventDefaults = {
  routeKey: '$default',
  accountId: '000000000000',
  apiId: 'local',
  stage: '$default',
} as const;

/** Options of {@link startFront}. */
export interface FrontOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** The handler that receives every matched request. */
  route: RouteHandler;
  /**
   * Route keys of the API, e.g. `['POST /v1/events', 'GET /v1/usage/{apiKey}', 'ANY /admin/{proxy+}']`.
   * A request no route matches gets 404 `{"message":"Not Found"}`, unless `$default` is listed.
   * When omitted, every request goes to the handler with route key `$default`.
   */
  routes?: readonly string[];
  /** Request bodies above this are answered 413. */
  maxPayloadBytes?: number;
  /** Events larger than this never reach the handler (Lambda's limit): 413 `{"message":"Request Too Long"}`. */
  maxEventBytes?: number;
  accountId?: string;
  apiId?: string;
  /** Called when the handler throws or returns a malformed result (the client gets a 500). */
  onError?: (err: unknown, event: APIGatewayProxyEventV2) => void;
  /** Idle keep-alive connections are kept this long. */
  keepAliveTimeoutMs?: number;
}

export const frontDefaults = {
  port: 0,
  host: '127.0.0.1',
  maxPayloadBytes: MAX_PAYLOAD_BYTES,
  maxEventBytes: LAMBDA_MAX_PAYLOAD_BYTES,
  accountId: eventDefaults.accountId,
  apiId: eventDefaults.apiId,
  keepAliveTimeoutMs: 65_000,
  onError: (err: unknown, event: APIGatewayProxyEventV2) =>
    console.error(`[apigw] ${event.routeKey} ${event.rawPath} failed:`, err),
} satisfies Partial<FrontOptions>;

/** A running front. */
export interface Front {
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  port: number;
  /** Stops accepting connections; waits for requests in progress (up to a few seconds). */
  stop(): Promise<void>;
}

const TEXT_TYPE = /^\s*(?:text\/|application\/(?:[\w.+-]*\+)?(?:json|xml)\b|application\/(?:x-www-form-urlencoded|javascript|graphql)\b)/i;

/**
 * True when API Gateway would pass this body as text: a JSON, text or form content type, no
 * content encoding, and valid UTF-8. Anything else (gzip, images, no content type) goes as base64.
 */
export function isTextBody(contentType: string | undefined, contentEncoding: string | undefined, body: Buffer): boolean {
  if (contentType === undefined || !TEXT_TYPE.test(contentType)) return false;
  if (contentEncoding !== undefined && contentEncoding.trim() !== '' && contentEncoding.trim().toLowerCase() !== 'identity') {
    return false;
  }
  return isUtf8(body);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => (n < 10 ? '0' : '') + n;
let cachedSecond = -1;
let cachedTime = '';
/** `12/Mar/2020:19:03:58 +0000`, API Gateway's `requestContext.time`; formatted once per second. */
function requestTime(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    cachedTime = `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad2(d.getUTCHours())}:${pad2(
      d.getUTCMinutes(),
    )}:${pad2(d.getUTCSeconds())} +0000`;
    cachedSecond = second;
  }
  return cachedTime;
}

/** Request ids and trace ids come from a pool refilled every 256 requests (randomBytes per request costs ~2 µs). */
const RANDOM_PER_REQUEST = 23;
const randomPool = Buffer.alloc(RANDOM_PER_REQUEST * 256);
let randomOffset = randomPool.length;
function nextRandom(): number {
  if (randomOffset >= randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const r = randomOffset;
  randomOffset += RANDOM_PER_REQUEST;
  return r;
}

function decode(s: string): string {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** Query string → parameters; repeated names are joined with ',' (format 2.0 has no multi-value map). */
function parseQuery(raw: string): Record<string, string> | undefined {
  if (raw === '') return undefined;
  const out: Record<string, string> = {};
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decode(eq === -1 ? part : part.slice(0, eq));
    const v = eq === -1 ? '' : decode(part.slice(eq + 1));
    out[k] = out[k] === undefined ? v : `${out[k]},${v}`;
  }
  return out;
}

/**
 * Builds the API Gateway HTTP API (payload 2.0) event for one request whose body has been read.
 * Headers are lower-cased and repeated ones joined with ','; `cookie` headers move to `cookies`;
 * `x-forwarded-*` and `x-amzn-trace-id` are added as API Gateway does.
 */
export function toApiGatewayEvent(req: IncomingMessage, body: Buffer, opts: EventOptions = {}): APIGatewayProxyEventV2 {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? '' : url.slice(q + 1);

  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'cookie') {
      for (const c of value.split(';')) {
        const t = c.trim();
        if (t !== '') (cookies ??= []).push(t);
      }
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : `${prev},${value}`;
  }

  let sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
  if (sourceIp.startsWith('::ffff:')) sourceIp = sourceIp.slice(7);
  const r = nextRandom();
  const requestId = randomPool.toString('base64', r, r + 11);
  const now = Date.now();
  const xff = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = xff === undefined ? sourceIp : `${xff}, ${sourceIp}`;
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-forwarded-port'] ??= String(opts.port ?? req.socket.localPort ?? 80);
  headers['x-amzn-trace-id'] ??= `Root=1-${Math.floor(now / 1000).toString(16)}-${randomPool.toString('hex', r + 11, r + 23)}`;

  const domainName = headers.host ?? 'localhost';
  const dot = domainName.indexOf('.');
  const colon = domainName.indexOf(':');
  const routeKey = opts.routeKey ?? eventDefaults.routeKey;
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: opts.accountId ?? eventDefaults.accountId,
      apiId: opts.apiId ?? eventDefaults.apiId,
      domainName,
      domainPrefix: dot !== -1 ? domainName.slice(0, dot) : colon !== -1 ? domainName.slice(0, colon) : domainName,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: opts.stage ?? eventDefaults.stage,
      time: requestTime(now),
      timeEpoch: now,
    },
    isBase64Encoded: false,
  };
  if (cookies !== undefined) event.cookies = cookies;
  const query = parseQuery(rawQueryString);
  if (query !== undefined) event.queryStringParameters = query;
  if (opts.pathParameters !== undefined) event.pathParameters = opts.pathParameters;
  if (body.length > 0) {
    if (isTextBody(headers['content-type'], headers['content-encoding'], body)) {
      event.body = body.toString('utf8');
    } else {
      event.body = body.toString('base64');
      event.isBase64Encoded = true;
    }
  }
  return event;
}

interface CompiledRoute {
  key: string;
  method: string | undefined; // undefined = ANY
  segments: string[];
  greedy: boolean;
  /** Higher wins: exact paths, then more literal segments, then a specific method. */
  rank: number;
}

function compileRoutes(routes: readonly string[]): { compiled: CompiledRoute[]; hasDefault: boolean } {
  const compiled: CompiledRoute[] = [];
  let hasDefault = false;
  for (const key of routes) {
    if (key === '$default') {
      hasDefault = true;
      continue;
    }
    const m = /^(\S+)\s+(\/\S*)$/.exec(key);
    if (!m) throw new Error(`route key "${key}" is not "METHOD /path" or "$default"`);
    const segments = m[2].split('/').slice(1);
    const greedy = segments.length > 0 && /^\{[^}]+\+\}$/.test(segments[segments.length - 1]);
    const literals = segments.filter((s) => !s.startsWith('{')).length;
    const method = m[1].toUpperCase() === 'ANY' ? undefined : m[1].toUpperCase();
    const exact = literals === segments.length;
    compiled.push({ key, method, segments, greedy, rank: (exact ? 1e6 : 0) + (greedy ? 0 : 1e4) + literals * 10 + (method ? 1 : 0) });
  }
  compiled.sort((a, b) => b.rank - a.rank);
  return { compiled, hasDefault };
}

function matchRoute(
  routes: CompiledRoute[],
  method: string,
  rawPath: string,
): { routeKey: string; pathParameters?: Record<string, string> } | undefined {
  const parts = rawPath.split('/').slice(1);
  for (const r of routes) {
    if (r.method !== undefined && r.method !== method) continue;
    const n = r.segments.length;
    if (r.greedy ? parts.length < n : parts.length !== n) continue;
    let params: Record<string, string> | undefined;
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const seg = r.segments[i];
      if (seg.startsWith('{')) {
        const greedy = r.greedy && i === n - 1;
        const name = seg.slice(1, greedy ? -2 : -1);
        const value = greedy ? parts.slice(i).join('/') : parts[i];
        // `/batch/{proxy+}` catches `/batch/` (the stack declares it for the trailing slash, which an
        // HTTP API route key cannot end in); a single `{name}` never matches an empty segment.
        if (value === '' && !greedy) ok = false;
        else if (value !== '') (params ??= {})[name] = decode(value);
      } else if (seg !== parts[i]) ok = false;
    }
    if (ok) return params === undefined ? { routeKey: r.key } : { routeKey: r.key, pathParameters: params };
  }
  return undefined;
}

const INTERNAL_ERROR = '{"message":"Internal Server Error"}';
const NOT_FOUND = '{"message":"Not Found"}';
const TOO_LARGE = '{"message":"Request Entity Too Large"}';
const TOO_LONG = '{"message":"Request Too Long"}';

function sendJson(res: ServerResponse, status: number, body: string, requestId?: string, close = false): void {
  const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (requestId !== undefined) headers['apigw-requestid'] = requestId;
  if (close) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** Writes a Lambda result back as API Gateway does; false when the result is malformed. */
function writeResult(res: ServerResponse, result: Exclude<RouteResult, undefined>, requestId: string): boolean {
  let status = 200;
  let body: Buffer | string = '';
  const headers: OutgoingHttpHeaders = {};
  if (typeof result === 'string') {
    headers['content-type'] = 'application/json';
    body = result;
  } else if (typeof result !== 'object' || result === null) {
    return false;
  } else if (typeof (result as APIGatewayProxyStructuredResultV2).statusCode !== 'number') {
    // No statusCode: API Gateway takes the whole value as a JSON body.
    headers['content-type'] = 'application/json';
    body = JSON.stringify(result);
  } else {
    const r = result as APIGatewayProxyStructuredResultV2;
    status = r.statusCode!;
    if (!Number.isInteger(status) || status < 100 || status > 599) return false;
    if (r.headers) {
      for (const name in r.headers) headers[name.toLowerCase()] = String(r.headers[name]);
    }
    if (Array.isArray(r.cookies) && r.cookies.length > 0) {
      const prev = headers['set-cookie'];
      headers['set-cookie'] = prev === undefined ? r.cookies : [String(prev), ...r.cookies];
    }
    if (r.body !== undefined && r.body !== null) {
      if (typeof r.body !== 'string') return false;
      body = r.isBase64Encoded ? Buffer.from(r.body, 'base64') : r.body;
    }
    headers['content-type'] ??= 'application/json';
  }
  headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  headers['apigw-requestid'] = requestId;
  res.writeHead(status, headers);
  res.end(body);
  return true;
}

/**
 * Starts the front on `host:port`. Each request is read in full (413 above `maxPayloadBytes`),
 * turned into an event, handed to `route`, and the result written back. A handler that throws, or
 * returns something API Gateway could not use, gives 500 `{"message":"Internal Server Error"}`.
 */
export async function startFront(opts: FrontOptions): Promise<Front> {
  const o = withDefaults(frontDefaults, opts);
  const table = opts.routes ? compileRoutes(opts.routes) : undefined;
  let port = 0;

  const dispatch = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    let routeKey: string = eventDefaults.routeKey;
    let pathParameters: Record<string, string> | undefined;
    if (table) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const m = matchRoute(table.compiled, req.method ?? 'GET', q === -1 ? url : url.slice(0, q));
      if (m) ({ routeKey, pathParameters } = m);
      else if (!table.hasDefault) return sendJson(res, 404, NOT_FOUND);
    }
    const event = toApiGatewayEvent(req, body, {
      routeKey,
      pathParameters,
      accountId: o.accountId,
      apiId: o.apiId,
      port,
    });
    const requestId = event.requestContext.requestId;
    // Only a large body can take the event over Lambda's limit: measure the event only then.
    if (event.body !== undefined && event.body.length > o.maxEventBytes - 64 * 1024 && Buffer.byteLength(JSON.stringify(event)) > o.maxEventBytes) {
      return sendJson(res, 413, TOO_LONG, requestId);
    }
    try {
      const result = await o.route(event);
      if (result === undefined) return sendJson(res, 404, NOT_FOUND, requestId);
      if (!writeResult(res, result, requestId)) {
        o.onError(new Error(`malformed Lambda result: ${JSON.stringify(result)?.slice(0, 200)}`), event);
        sendJson(res, 500, INTERNAL_ERROR, requestId);
      }
    } catch (err) {
      o.onError(err, event);
      if (!res.headersSent) sendJson(res, 500, INTERNAL_ERROR, requestId);
      else res.destroy();
    }
  };

  const server = createServer((req, res) => {
    const limit = o.maxPayloadBytes;
    const declared = req.headers['content-length'];
    let tooLarge = declared !== undefined && Number(declared) > limit;
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return; // drained, not kept
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        first = undefined;
        chunks = undefined;
      } else if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    });
    req.on('end', () => {
      // The body is read to the end before answering 413, so the client sees the answer rather than a reset.
      if (tooLarge) return sendJson(res, 413, TOO_LARGE, undefined, true);
      void dispatch(req, res, chunks ? Buffer.concat(chunks, size) : (first ?? EMPTY));
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = o.keepAliveTimeoutMs;
  server.headersTimeout = o.keepAliveTimeoutMs + 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const hostForUrl = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  let stopped: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    stop() {
      stopped ??= new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), 5000);
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      });
      return stopped;
    },
  };
}

const EMPTY = Buffer.alloc(0);

/** `{...defaults, ...opts}`, except that an option given as `undefined` keeps its default. */
function withDefaults<D extends object, O extends object>(defaults: D, opts: O): D & O {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as D & O;
}
