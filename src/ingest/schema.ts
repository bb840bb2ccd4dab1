/**
 * Stage 2 of ingest: validate with zod. Every problem is reported with its JSON path, so a client
 * learns all that is wrong with a batch in one answer. Limits follow PostHog's capture.
 */
import * as z from 'zod/mini';
import { BadRequestError, type FieldProblem } from '../errors';

// zod/mini: the same validation as classic zod at a tenth of the bundle (ingest cold start).

/** Most events in one native request (`{"batch": [...]}`). */
export const MAX_BATCH_EVENTS = 1000;
/**
 * Most events in one request on the PostHog routes. PostHog limits only bytes (20 MB `/batch`, 2 MB the
 * others); a count bounds the work and memory of one request too (posthog-node sends ≤ 100 per request).
 */
export const MAX_POSTHOG_BATCH_EVENTS = 10_000;
export const MAX_NAME_LENGTH = 200;

const name = z.string().check(z.minLength(1, 'must not be empty'), z.maxLength(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`));

/** A distinct id: string or finite number (stringified), 1–200 characters. */
const distinctId = z.pipe(
  z.pipe(
    z.union([z.string(), z.number().check(z.refine(Number.isFinite, 'must be a finite number'))], {
      error: (i) => (i.input === undefined ? 'is required' : 'must be a string or a number'),
    }),
    z.transform((v: string | number) => (typeof v === 'number' ? String(v) : v)),
  ),
  name,
);

const eventName = z.string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') }).check(
  z.minLength(1, 'must not be empty'),
  z.maxLength(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`),
);

/** ISO-8601 string or epoch milliseconds → epoch ms. */
const timestamp = z.pipe(
  z.union([z.string(), z.number()], { error: 'must be an ISO-8601 string or epoch milliseconds' }),
  z.transform((v: string | number, ctx) => {
    const ms = typeof v === 'number' ? v : Date.parse(v);
    if (!Number.isFinite(ms) || ms < 0) {
      ctx.issues.push({ code: 'custom', message: 'must be an ISO-8601 string or epoch milliseconds', input: v });
      return 0;
    }
    return ms;
  }),
);

const uuid = z.guid({ error: 'must be a UUID' });
/** A JSON object, kept as sent: checked by shape, not copied key by key as z.record would (the hot path). */
const properties = z.custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v), { error: 'must be an object' });

/** One event of the native API. */
export const nativeEventSchema = z.object({
  distinctId,
  event: z._default(eventName, 'api_call'),
  properties: z.optional(properties),
  timestamp: z.optional(timestamp),
  uuid: z.optional(uuid),
});
export type NativeEvent = z.infer<typeof nativeEventSchema>;

const nativeBatchSchema = z.object({
  batch: z
    .array(z.unknown(), { error: 'must be an array of events' })
    .check(z.minLength(1, 'must hold at least one event'), z.maxLength(MAX_BATCH_EVENTS, `must hold at most ${MAX_BATCH_EVENTS} events`)),
});

/** One PostHog capture event (posthog-node, posthog-js, any SDK). */
const posthogEventSchema = z.pipe(
  z.object({
    event: eventName,
    distinct_id: z.optional(distinctId),
    properties: z.optional(properties),
    timestamp: z.optional(timestamp),
    offset: z.optional(z.number({ error: 'must be a number of milliseconds' }).check(z.nonnegative('must not be negative'))),
    uuid: z.optional(uuid),
    $set: z.optional(properties),
    $set_once: z.optional(properties),
  }),
  z.transform((e, ctx) => {
    // PostHog takes the distinct id from the event, else from its properties.
    let id = e.distinct_id;
    if (id === undefined) {
      const r = z.safeParse(distinctId, e.properties?.distinct_id ?? e.properties?.$distinct_id);
      if (!r.success) {
        ctx.issues.push({ code: 'custom', path: ['distinct_id'], message: r.error.issues[0]!.message, input: e });
        return { ...e, distinct_id: '' };
      }
      id = r.data;
    }
    return { ...e, distinct_id: id };
  }),
);
export type PostHogCaptureEvent = z.infer<typeof posthogEventSchema>;

function problems(err: z.core.$ZodError, prefix: (string | number)[]): FieldProblem[] {
  return err.issues.map((i) => ({ path: [...prefix, ...i.path].join('.') || '(body)', message: i.message }));
}

/** `null`, `a number`, … for messages about a body that is not what a route takes. */
const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? 'a string' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** Where each event of a body sits, for error paths: `batch.3`, `3` or the body itself. */
export type PathOf = (index: number) => string;
const pathOfFor = (prefix: string | undefined, single: boolean): PathOf => (single ? () => '' : (i) => (prefix === undefined ? String(i) : `${prefix}.${i}`));

/** Parsed native events and where each sat in the body. */
export interface NativeBody {
  events: NativeEvent[];
  pathOf: PathOf;
}

/** Parses a native body (one event or `{batch:[…]}`); throws a 400 listing every bad field. */
export function parseNativeBody(body: unknown): NativeEvent[] {
  return parseNative(body).events;
}

/** {@link parseNativeBody} with each event's position. */
export function parseNative(body: unknown): NativeBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError(`body must be a JSON object, one event or {"batch": [...]}, not ${kindOf(body)}`);
  }
  if ('batch' in body) {
    const b = z.safeParse(nativeBatchSchema, body);
    if (!b.success) throw new BadRequestError('invalid batch', problems(b.error, []));
    return { events: parseEach(b.data.batch, nativeEventSchema, ['batch']), pathOf: pathOfFor('batch', false) };
  }
  const r = z.safeParse(nativeEventSchema, body);
  if (!r.success) throw new BadRequestError('invalid event', problems(r.error, []));
  return { events: [r.data], pathOf: pathOfFor(undefined, true) };
}

/** The events and the token of a PostHog capture body. */
export interface PostHogBody {
  events: PostHogCaptureEvent[];
  token?: string;
  /** `sent_at`, epoch ms; a `sent_at` that is not a time is a 400. */
  sentAt?: number;
  pathOf: PathOf;
}

/** The events of a PostHog body, unvalidated, and where they sit. */
function postHogItems(body: unknown): { items: unknown[]; prefix?: string; single: boolean } {
  if (Array.isArray(body)) return { items: body, single: false };
  if (body !== null && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    if ('batch' in o) {
      if (!Array.isArray(o.batch)) throw new BadRequestError('invalid batch', [{ path: 'batch', message: 'must be an array of events' }]);
      return { items: o.batch, prefix: 'batch', single: false };
    }
    return { items: [o], single: true };
  }
  throw new BadRequestError(`body must be a JSON object or an array of events, not ${kindOf(body)}`);
}

/**
 * The key a PostHog body carries, read the way PostHog does (`api_key`, `token`, `$token`, then the first
 * event's, then its `properties.token`/`$token`), without validating anything else: checked before the
 * (costlier) validation of the events.
 */
export function postHogBodyToken(body: unknown): string | undefined {
  let token: unknown;
  let first: Record<string, unknown> | undefined;
  if (Array.isArray(body)) first = body[0] as Record<string, unknown> | undefined;
  else if (body !== null && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    token = o.api_key ?? o.token ?? o.$token;
    first = Array.isArray(o.batch) ? (o.batch[0] as Record<string, unknown> | undefined) : o;
  }
  if (token === undefined && first !== null && typeof first === 'object') {
    const props = first.properties as Record<string, unknown> | undefined;
    token = first.api_key ?? first.token ?? first.$token ?? (props !== null && typeof props === 'object' ? (props.token ?? props.$token) : undefined);
  }
  return typeof token === 'string' ? token : undefined;
}

/** Parses `{api_key|token, batch}`, a single event, or an array of events. */
export function parsePostHogBody(body: unknown): PostHogBody {
  const { items, prefix, single } = postHogItems(body);
  if (items.length === 0) throw new BadRequestError('no events in the body');
  if (items.length > MAX_POSTHOG_BATCH_EVENTS) {
    throw new BadRequestError(`too many events: ${items.length}`, [{ path: prefix ?? '(body)', message: `must hold at most ${MAX_POSTHOG_BATCH_EVENTS} events` }]);
  }
  const events = parseEach(items, posthogEventSchema, single ? [] : prefix ? [prefix] : []);
  let sentAt: number | undefined;
  const rawSentAt = !Array.isArray(body) ? (body as Record<string, unknown>).sent_at : undefined;
  if (rawSentAt !== undefined && rawSentAt !== null) {
    const r = z.safeParse(timestamp, rawSentAt);
    if (!r.success) throw new BadRequestError('invalid sent_at', [{ path: 'sent_at', message: 'must be an ISO-8601 string or epoch milliseconds' }]);
    sentAt = r.data;
  }
  // parseEach names the fields of a lone event without an index (an array of one, or a single event).
  return { events, token: postHogBodyToken(body), sentAt, pathOf: pathOfFor(prefix, single || (prefix === undefined && items.length === 1)) };
}

function parseEach<S extends z.ZodMiniType>(items: unknown[], schema: S, prefix: (string | number)[]): z.infer<S>[] {
  const out: z.infer<S>[] = new Array(items.length);
  const bad: FieldProblem[] = [];
  let badEvents = 0;
  const single = items.length === 1 && prefix.length === 0;
  for (let i = 0; i < items.length; i++) {
    const r = z.safeParse(schema, items[i]);
    if (r.success) out[i] = r.data;
    else {
      badEvents++;
      bad.push(...problems(r.error, single ? [] : [...prefix, i]));
    }
  }
  if (bad.length > 0) {
    throw new BadRequestError(
      single ? 'invalid event' : `${badEvents} of ${items.length} events are invalid; nothing was accepted`,
      bad.slice(0, 100),
    );
  }
  return out;
}
