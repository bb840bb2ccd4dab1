/**
 * What every middleware records per request, in one place: who (`distinctId`, required), what
 * (`event`, default `api_call`), and the properties `route` (the route *template*), `method`,
 * `status` and `duration_ms`. Tracking never throws into the app: a request whose `distinctId`
 * returns nothing, or whose option function throws, is skipped, counted in `stats().skipped` and
 * reported through `onError` once per middleware.
 */
import { TallyError } from '../errors';
import { DEFAULT_EVENT } from '../event';
import { TALLY_INTERNAL, type Tally, type TallyInternal } from '../tally';

/** `route` of a request that matched no route (a 404 from the framework). */
export const UNMATCHED_ROUTE = '(unmatched)';

/** What the middleware measured about one request. */
export interface CallInfo {
  /** The route template (`/big/:id`), or `(unmatched)`. */
  route: string;
  method: string;
  status: number;
  durationMs: number;
}

/** Options every middleware takes; `Req` is the framework's request (Hono: the context; middy: the event). */
export interface MiddlewareOptions<Req> {
  /** Who made the call (an API key's owner, a user id). Required; a request for which it returns nothing is not tracked. */
  distinctId: (req: Req) => string | number | null | undefined;
  /** The event name, or a function of the request. Default `api_call`. */
  event?: string | ((req: Req) => string);
  /** More properties for the event (merged over route, method, status, duration_ms). */
  properties?: (req: Req, call: CallInfo) => Record<string, unknown> | undefined;
  /** The route template, when the framework's is not what you want. */
  route?: (req: Req) => string | undefined;
  /** Requests not to track (health checks, say). */
  skip?: (req: Req) => boolean;
}

export type Recorder<Req> = (req: Req, call: Omit<CallInfo, 'route'> & { route: string | undefined }) => void;

const round1 = (ms: number): number => Math.round(ms * 10) / 10;

function internal(tally: Tally): TallyInternal | undefined {
  return (tally as unknown as { [TALLY_INTERNAL]?: TallyInternal })[TALLY_INTERNAL];
}

/** Checks a middleware's arguments (at app start: this may throw) and returns its per-request recorder (which never throws). */
export function createRecorder<Req>(tally: Tally, options: MiddlewareOptions<Req>, name: string): Recorder<Req> {
  if (!tally || typeof tally.track !== 'function') throw new TallyError('invalid_options', `${name}(tally, options): tally must be a client from createTally()`);
  if (!options || typeof options.distinctId !== 'function') throw new TallyError('invalid_options', `${name}(tally, { distinctId }): distinctId must be a function of the request that returns who made the call`);
  const event = options.event ?? DEFAULT_EVENT;
  if (typeof event !== 'string' && typeof event !== 'function') throw new TallyError('invalid_options', `${name}: event must be a string or a function of the request`);
  const hooks = internal(tally);
  const reported = new Set<string>();
  const skipped = (code: 'missing_distinct_id' | 'middleware_failed', message: string, cause?: unknown): void => {
    const first = !reported.has(code);
    if (first) reported.add(code);
    const err = first ? new TallyError(code, `${message} (reported once; stats().skipped counts every skipped request)`, { cause }) : undefined;
    if (hooks) hooks.skipped(err);
    else if (err) globalThis.console?.warn(`[tally] ${err.message}`);
  };
  return (req, call) => {
    let route = call.route ?? UNMATCHED_ROUTE;
    try {
      if (options.skip?.(req)) return;
      let id: string | number | null | undefined;
      try {
        id = options.distinctId(req);
      } catch (err) {
        skipped('missing_distinct_id', `${name}: distinctId(req) threw for ${call.method} ${route}, the request was not tracked: ${(err as Error)?.message ?? String(err)}`, err);
        return;
      }
      if (id === undefined || id === null || id === '') {
        skipped('missing_distinct_id', `${name}: distinctId(req) returned ${id === '' ? 'an empty string' : String(id)} for ${call.method} ${route}, the request was not tracked`);
        return;
      }
      if (options.route) route = options.route(req) ?? route;
      const info: CallInfo = { route, method: call.method, status: call.status, durationMs: call.durationMs };
      const extra = options.properties?.(req, info);
      const properties = { route, method: call.method, status: call.status, duration_ms: round1(call.durationMs), ...extra };
      tally.track({ distinctId: id, event: typeof event === 'function' ? event(req) : event, properties });
    } catch (err) {
      skipped('middleware_failed', `${name}: an option function threw for ${call.method} ${route}, the request was not tracked: ${(err as Error)?.message ?? String(err)}`, err);
    }
  };
}
