/**
 * The ingest pipeline, independent of Lambda: route → authenticate → decode → validate → normalise
 * → queue. It resolves only after the queue has taken every event; any failure rejects with an
 * {@link HttpError} and nothing from the request is acknowledged.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { NotFoundError } from '../errors';
import { matchRoute } from '../http/route-table';
import type { EventQueue } from '../queue/types';
import type { QueuedEvent } from '../types';
import { keyFromHeaders, type KeyChecker } from './auth';
import { decodeBody } from './decode';
import { fromNative, fromPostHog, type ReceiptContext } from './normalise';
import { parseNativeBody, parsePostHogBody } from './schema';

/** Which API a request speaks. */
export type IngestRoute = 'native' | 'posthog' | 'posthog-batch';

const INGEST_KINDS: ReadonlySet<string> = new Set<IngestRoute>(['native', 'posthog', 'posthog-batch']);

/** The counting route of a method and path (src/http/route-table.ts); a trailing slash is ignored, as PostHog does. */
export function matchIngestRoute(method: string, path: string): IngestRoute | undefined {
  const r = matchRoute(method, path);
  return r !== undefined && INGEST_KINDS.has(r.kind) ? (r.kind as IngestRoute) : undefined;
}

/** Body limits after decompression. PostHog: /batch 20 MB, other capture routes 2 MB. */
export const ingestDefaults = {
  nativeMaxBytes: 5 * 1024 * 1024,
  posthogMaxBytes: 2 * 1024 * 1024,
  posthogBatchMaxBytes: 20 * 1024 * 1024,
};

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

export function createIngest(deps: IngestDeps): (event: APIGatewayProxyEventV2) => Promise<IngestResult> {
  const limits = { ...ingestDefaults, ...deps.limits };
  const now = deps.now ?? Date.now;
  return async (event) => {
    const route = matchIngestRoute(event.requestContext.http.method, event.rawPath);
    if (route === undefined) throw new NotFoundError(`no route ${event.requestContext.http.method} ${event.rawPath}`);
    const headers = event.headers ?? {};
    const ctx: ReceiptContext = { receivedAt: now(), ip: event.requestContext.http.sourceIp };
    const raw = {
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      compression: event.queryStringParameters?.compression,
    };

    let events: QueuedEvent[];
    if (route === 'native') {
      deps.checkKey(keyFromHeaders(headers));
      const parsed = parseNativeBody(decodeBody(raw, limits.nativeMaxBytes));
      events = parsed.map((e) => fromNative(e, ctx));
    } else {
      const parsed = parsePostHogBody(decodeBody(raw, route === 'posthog-batch' ? limits.posthogBatchMaxBytes : limits.posthogMaxBytes));
      deps.checkKey(parsed.token ?? keyFromHeaders(headers));
      ctx.sentAt = parsed.sentAt;
      events = parsed.events.map((e) => fromPostHog(e, ctx));
    }

    const t0 = performance.now();
    const sent = await deps.queue.send(events);
    return { route, events, queueMs: performance.now() - t0, messages: sent.messages };
  };
}
