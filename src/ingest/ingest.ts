/**
 * The ingest pipeline, independent of Lambda: route → authenticate → decode → validate → normalise
 * → queue. It resolves only after the queue has taken every event; any failure rejects with an
 * {@link HttpError} and nothing from the request is acknowledged.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { BadRequestError, NotFoundError } from '../errors';
import { matchRoute } from '../http/route-table';
import type { EventQueue } from '../queue/types';
import type { QueuedEvent } from '../types';
import { keyFromHeaders, type KeyChecker } from './auth';
import { decodeBody, probeBodyKey, type RawBody } from './decode';
import { fromNative, fromPostHog, normaliseEvents, timeWindowDefaults, type ReceiptContext } from './normalise';
import { parseNative, parsePostHogBody, postHogBodyToken } from './schema';

/** Which API a request speaks. */
export type IngestRoute = 'native' | 'posthog' | 'posthog-batch';

const INGEST_KINDS: ReadonlySet<string> = new Set<IngestRoute>(['native', 'posthog', 'posthog-batch']);

/** The counting route of a method and path (src/http/route-table.ts); a trailing slash is ignored, as PostHog does. */
export function matchIngestRoute(method: string, path: string): IngestRoute | undefined {
  const r = matchRoute(method, path);
  return r !== undefined && INGEST_KINDS.has(r.kind) ? (r.kind as IngestRoute) : undefined;
}

/**
 * Body limits after decompression. PostHog: /batch 20 MB, other capture routes 2 MB. Received bodies are
 * bounded earlier by Lambda's 6 MB invocation payload (docs/DEPLOY.md, "Request size limits"): about
 * 6 MB of plain text, or 4.5 MB of binary (gzip) bodies, which API Gateway base64-encodes.
 */
export const ingestDefaults = {
  nativeMaxBytes: 5 * 1024 * 1024,
  posthogMaxBytes: 2 * 1024 * 1024,
  posthogBatchMaxBytes: 20 * 1024 * 1024,
  /** Oldest event time accepted, ms before receipt (`TALLY_MAX_EVENT_AGE_DAYS`). */
  maxEventAgeMs: timeWindowDefaults.maxAgeMs,
};

/** `Idempotency-Key`: printable ASCII, 1–200 characters. */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;

export interface IngestDeps {
  queue: EventQueue;
  checkKey: KeyChecker;
  limits?: Partial<typeof ingestDefaults>;
  now?: () => number;
}

export interface IngestResult {
  route: IngestRoute;
  events: QueuedEvent[];
  /** Milliseconds spent waiting for the queue. */
  queueMs: number;
  messages: number;
}

/**
 * The pipeline. The key is checked before any costly work: a header key first (the native route requires
 * one), then a body key read from the first bytes of a PostHog body, then — for bodies that carry it
 * elsewhere — right after parsing, before validation. So an unauthenticated request costs at most a small
 * probe, or one bounded decode and parse (the route's size limit), never the validation of its events.
 */
export function createIngest(deps: IngestDeps): (event: APIGatewayProxyEventV2) => Promise<IngestResult> {
  const limits = { ...ingestDefaults, ...deps.limits };
  const window = { ...timeWindowDefaults, maxAgeMs: limits.maxEventAgeMs };
  const now = deps.now ?? Date.now;
  return async (event) => {
    const route = matchIngestRoute(event.requestContext.http.method, event.rawPath);
    if (route === undefined) throw new NotFoundError(`no route ${event.requestContext.http.method} ${event.rawPath}`);
    const headers = event.headers ?? {};
    const headerKey = keyFromHeaders(headers);
    if (headerKey !== undefined || route === 'native') deps.checkKey(headerKey);
    const idempotencyKey = headers['idempotency-key'];
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new BadRequestError('invalid Idempotency-Key header', [{ path: 'idempotency-key (header)', message: 'must be 1–200 printable ASCII characters' }]);
    }
    const raw: RawBody = {
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      compression: event.queryStringParameters?.compression,
    };
    const ctx: ReceiptContext = { receivedAt: now(), ip: event.requestContext.http.sourceIp };

    let events: QueuedEvent[];
    if (route === 'native') {
      if (idempotencyKey !== undefined) ctx.idempotency = { key: idempotencyKey, scope: headerKey! };
      const parsed = parseNative(decodeBody(raw, limits.nativeMaxBytes));
      events = normaliseEvents(parsed.events, fromNative, ctx, parsed.pathOf, window);
    } else {
      if (headerKey === undefined) {
        const probed = probeBodyKey(raw);
        if (probed !== undefined) deps.checkKey(probed);
      }
      const body = decodeBody(raw, route === 'posthog-batch' ? limits.posthogBatchMaxBytes : limits.posthogMaxBytes);
      const token = postHogBodyToken(body);
      if (token !== undefined || headerKey === undefined) deps.checkKey(token);
      if (idempotencyKey !== undefined) ctx.idempotency = { key: idempotencyKey, scope: (token ?? headerKey)! };
      const parsed = parsePostHogBody(body);
      ctx.sentAt = parsed.sentAt;
      events = normaliseEvents(parsed.events, fromPostHog, ctx, parsed.pathOf, window);
    }

    const t0 = performance.now();
    const sent = await deps.queue.send(events);
    return { route, events, queueMs: performance.now() - t0, messages: sent.messages };
  };
}
