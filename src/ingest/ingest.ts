/**
 * The ingest pipeline, independent of Lambda: route → authenticate → decode → validate → normalise
 * → the project's rules (distinct id of a client token, IP policy, quota, rate) → queue. It resolves
 * only after the queue has taken every event; any failure rejects with an {@link HttpError} and nothing
 * from the request is acknowledged.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { BadRequestError, ForbiddenError, HttpError, NotFoundError, type FieldProblem } from '../errors';
import { OriginRules } from '../http/cors';
import { matchRoute } from '../http/route-table';
import type { Authenticated, Authenticator } from '../projects/auth';
import { applyIpPolicy, applyIpPolicyToProperties } from '../projects/ip';
import { enforceLimits, type EnforceOptions } from '../projects/limits';
import type { Principal, Project } from '../projects/types';
import type { EventQueue } from '../queue/types';
import type { QueuedEvent } from '../types';
import { keyFromHeaders } from './auth';
import { decodeBody, probeBodyKey, type RawBody } from './decode';
import { fromNative, fromPostHog, normaliseEvents, timeWindowDefaults, type ReceiptContext } from './normalise';
import { parseNative, parsePostHogBody, postHogBodyToken, type PathOf } from './schema';

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
  /** Who a request is: secret keys and client tokens (src/projects/auth.ts). */
  auth: Pick<Authenticator, 'authenticate'>;
  /** Browser origins per project (src/http/cors.ts); unset: only requests without `Origin` pass. */
  cors?: OriginRules;
  /** The project's rate limit and monthly quota (src/projects/limits.ts); unset: not enforced. */
  rate?: EnforceOptions['rate'];
  quota?: EnforceOptions['quota'];
  /** Bound of one limit check's DynamoDB work; past it the request is admitted (and `onLimitUnavailable` told). */
  limitTimeoutMs?: number;
  onLimitUnavailable?: EnforceOptions['onUnavailable'];
  limits?: Partial<typeof ingestDefaults>;
  now?: () => number;
}

export interface IngestResult {
  route: IngestRoute;
  events: QueuedEvent[];
  /** Milliseconds spent waiting for the queue. */
  queueMs: number;
  messages: number;
  principal: Principal;
  project: Project;
}

/** Limit checks give up after this (the request is then admitted): DynamoDB answers in milliseconds. */
export const LIMIT_TIMEOUT_MS = 1000;

const NO_ORIGINS = new OriginRules([]);

/** 403 unless every event is for the client token's distinct id. */
function checkTokenDistinctId(principal: Principal, events: readonly QueuedEvent[], pathOf: PathOf, field: string): void {
  const want = principal.distinctId;
  if (want === undefined) return;
  const bad: FieldProblem[] = [];
  for (let i = 0; i < events.length && bad.length < 100; i++) {
    if (events[i]!.distinct_id !== want) {
      const at = pathOf(i);
      bad.push({ path: at ? `${at}.${field}` : field, message: 'must be the distinct id the client token was issued for' });
    }
  }
  if (bad.length) throw new HttpError('forbidden', `this client token is for one distinct id; ${bad.length} event(s) are for another; nothing was accepted`, bad);
}

/**
 * The pipeline. The key is checked before any costly work: a header key first (the native route requires
 * one), then a body key read from the first bytes of a PostHog body, then — for bodies that carry it
 * elsewhere — right after parsing, before validation. So an unauthenticated request costs at most a small
 * probe, or one bounded decode and parse (the route's size limit), never the validation of its events.
 * Each credential's shape is checked before any lookup (src/projects/keys.ts); a known key is answered
 * from memory (src/projects/cache.ts). A request from a browser must come from an origin its project allows.
 */
export function createIngest(deps: IngestDeps): (event: APIGatewayProxyEventV2) => Promise<IngestResult> {
  const limits = { ...ingestDefaults, ...deps.limits };
  const window = { ...timeWindowDefaults, maxAgeMs: limits.maxEventAgeMs };
  const now = deps.now ?? Date.now;
  const cors = deps.cors ?? NO_ORIGINS;
  const enforce: EnforceOptions = { rate: deps.rate, quota: deps.quota, timeoutMs: deps.limitTimeoutMs ?? LIMIT_TIMEOUT_MS, onUnavailable: deps.onLimitUnavailable };
  return async (event) => {
    const route = matchIngestRoute(event.requestContext.http.method, event.rawPath);
    if (route === undefined) throw new NotFoundError(`no route ${event.requestContext.http.method} ${event.rawPath}`);
    const headers = event.headers ?? {};
    const origin = headers.origin;
    const admit = async (credential: string | undefined): Promise<Authenticated> => {
      const a = await deps.auth.authenticate(credential, 'ingest');
      cors.assertAllowed(a.project, origin);
      return a;
    };
    const headerKey = keyFromHeaders(headers);
    let who: Authenticated | undefined;
    let credential: string | undefined;
    if (headerKey !== undefined || route === 'native') {
      who = await admit(headerKey);
      credential = headerKey;
    }
    const idempotencyKey = headers['idempotency-key'];
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new BadRequestError('invalid Idempotency-Key header', [{ path: 'idempotency-key (header)', message: 'must be 1–200 printable ASCII characters' }]);
    }
    const raw: RawBody = {
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      compression: event.queryStringParameters?.compression,
    };
    const receivedAt = now();

    let events: QueuedEvent[];
    let pathOf: PathOf;
    if (route === 'native') {
      const parsed = parseNative(decodeBody(raw, limits.nativeMaxBytes));
      const ctx = receipt(who!, event, receivedAt);
      if (idempotencyKey !== undefined) ctx.idempotency = { key: idempotencyKey, scope: credential! };
      events = normaliseEvents(parsed.events, fromNative, ctx, parsed.pathOf, window);
      pathOf = parsed.pathOf;
    } else {
      if (headerKey === undefined) {
        const probed = probeBodyKey(raw);
        if (probed !== undefined) {
          who = await admit(probed);
          credential = probed;
        }
      }
      const body = decodeBody(raw, route === 'posthog-batch' ? limits.posthogBatchMaxBytes : limits.posthogMaxBytes);
      const token = postHogBodyToken(body);
      if (token !== undefined ? token !== credential : who === undefined) {
        const b = await admit(token);
        // Both a header key and a body key: the body's is the project (as PostHog reads it); both must agree.
        if (who !== undefined && b.project.id !== who.project.id) throw new ForbiddenError('the header key and the body key belong to different projects');
        who = b;
        credential = token;
      }
      const ctx = receipt(who!, event, receivedAt);
      if (idempotencyKey !== undefined) ctx.idempotency = { key: idempotencyKey, scope: credential! };
      const parsed = parsePostHogBody(body);
      ctx.sentAt = parsed.sentAt;
      events = normaliseEvents(parsed.events, fromPostHog, ctx, parsed.pathOf, window);
      pathOf = parsed.pathOf;
    }

    const { principal, project } = who!;
    checkTokenDistinctId(principal, events, pathOf, route === 'native' ? 'distinctId' : 'distinct_id');
    if (project.ip !== 'keep') for (const e of events) applyIpPolicyToProperties(e.properties, project.ip);
    if (project.rate !== undefined || project.monthlyQuota !== undefined) {
      const limited = enforceLimits(project, events.length, enforce); // usually decided from memory, without a promise
      if (limited) await limited;
    }

    const t0 = performance.now();
    const sent = await deps.queue.send(events);
    return { route, events, queueMs: performance.now() - t0, messages: sent.messages, principal, project };
  };
}

/** What every event of the request shares: its time, its project, and the client IP as the project's policy lets it through. */
function receipt(who: Authenticated, event: APIGatewayProxyEventV2, receivedAt: number): ReceiptContext {
  return { receivedAt, ip: applyIpPolicy(event.requestContext.http.sourceIp, who.project.ip), project: who.project.id };
}
