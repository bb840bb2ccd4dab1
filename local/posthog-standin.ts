/**
 * A real HTTP server standing in for PostHog: the one stand-in of `npm start` (ingest's PostHog when no
 * PostHog keys are set: flag definitions from a file, sampled raw events to a JSONL file), the tests and the
 * benchmark (a real posthog-node client talking to it over HTTP). It listens on its own loopback port,
 * apart from tally's front, so events posted to its `/batch/` can never loop back into tally's own
 * `/batch/` (which counts).
 *
 * Capture: `POST /batch/`, `/batch`, `/capture/`, `/e/`, `/i/v0/e/`, `/track/`; the body is gzip
 * (recognised by its magic bytes, whatever the headers say) or plain JSON, either `{api_key, batch: [...],
 * sent_at}`, a single event, or an array of events, and needs a project key as PostHog does (401 otherwise).
 * Every event is recorded in `all` (and appended to `capturedFile`); `unique` keeps the first event of each
 * `uuid`, as PostHog's ingestion deduplicates. Answers `200 {"status":1}`.
 *
 * Flags: `GET /flags/definitions` (and the older `/api/feature_flag/local_evaluation`) serve the
 * definitions, with an ETag (304 when unchanged); a definitions file is read on every request, so an edit
 * applies at the next poll. `POST /flags/` and `/decide/` evaluate those definitions locally with
 * posthog-node for the request's `distinct_id`, `person_properties`, `groups` and `group_properties`, in
 * the shape of PostHog's answer (v2 `flags` and the older `featureFlags`/`featureFlagPayloads`), so
 * tally's flag routes work offline too. `requests` counts every path.
 */
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { PostHog, type FlagDefinitionCacheData } from 'posthog-node';
import type { FlagDefinitions } from '../src/sampling/flag';

/** Served when no definitions are configured or the file is absent. */
export const EMPTY_FLAG_DEFINITIONS = { flags: [], group_type_mapping: {}, cohorts: {} } as const;

/** One event as PostHog received it, with where it came from. */
export interface CapturedEvent {
  event: string;
  distinct_id?: unknown;
  uuid?: string;
  timestamp?: string;
  properties: Record<string, unknown>;
  /** The project key of the request (body `api_key`, or the event's own `api_key`/`token`). */
  apiKey?: string;
  /** Request path it arrived on. */
  path: string;
  /** Every field of the event as sent. */
  raw: Record<string, unknown>;
}

/** One capture request. */
export interface CaptureRequest {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body was gzip. */
  gzipped: boolean;
  apiKey?: string;
  sentAt?: string;
  events: CapturedEvent[];
}

/** Any request, for assertions on what the client asked for. */
export interface RequestLogEntry {
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
}

/**
 * How the stand-in fails: `false` works; `true` or `'503'` answers 503; `'destroy'` destroys the
 * socket without an answer (an unreachable or crashing server).
 */
export type DownMode = boolean | '503' | 'destroy';

/** Options of {@link startPosthogStandin}. */
export interface StandinOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Definitions JSON for `GET /flags/definitions`, or a file to read it from (on every request). */
  flagDefinitions?: unknown;
  flagDefinitionsFile?: string;
  /** JSONL file every captured event is appended to (`{event, distinct_id, uuid, timestamp, properties}`). */
  capturedFile?: string;
  /**
   * Most events, requests and log entries kept in memory (the oldest go first; the JSONL file keeps
   * everything): `npm start` runs for days. Unset: all (tests read them back).
   */
  maxKept?: number;
}

export const standinDefaults = {
  port: 0,
  host: '127.0.0.1',
} satisfies StandinOptions;

/** A running stand-in. */
export interface PosthogStandin {
  /** Base URL to give posthog-node as `host`. */
  url: string;
  port: number;
  /** Every event received, duplicates included, in arrival order. */
  readonly all: CapturedEvent[];
  /** The same as {@link all} (the name `npm start`'s wiring reads). */
  readonly events: CapturedEvent[];
  /** First event of each uuid (events without a uuid are all kept), in arrival order. */
  readonly unique: CapturedEvent[];
  /** Every accepted capture request. */
  readonly batches: CaptureRequest[];
  /** Requests per path (query string excluded), counted even while down. */
  readonly requests: Map<string, number>;
  /** Every request, in order. */
  readonly log: RequestLogEntry[];
  /** Capture requests refused (bad body, no api key), with the reason. */
  readonly rejected: { path: string; status: number; reason: string }[];
  /** Makes the server fail (see {@link DownMode}) or work again. */
  setDown(mode: DownMode): void;
  /** Replaces the definitions served at `/flags/definitions`. */
  setFlagDefinitions(json: unknown): void;
  /** Count of requests to a path (0 if none). */
  count(path: string): number;
  /** Resolves when at least `n` unique events have arrived; rejects after `timeoutMs`. */
  waitForEvents(n: number, timeoutMs?: number): Promise<CapturedEvent[]>;
  /** Forgets events, batches, counts and the log; works again (not down); serves the initial flag definitions. */
  reset(): void;
  stop(): Promise<void>;
}

const CAPTURE_PATHS = new Set(['/batch/', '/batch', '/capture/', '/capture', '/e/', '/e', '/i/v0/e/', '/i/v0/e', '/track/', '/track']);
const FLAG_DEFINITION_PATHS = new Set(['/flags/definitions', '/flags/definitions/', '/api/feature_flag/local_evaluation', '/api/feature_flag/local_evaluation/']);
const REMOTE_FLAG_PATHS = new Set(['/flags', '/flags/', '/decide', '/decide/']);

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

class BadPayload extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Body bytes → JSON, gunzipping when the body starts with the gzip magic bytes. */
function decodeBody(body: Buffer): { json: unknown; gzipped: boolean } {
  const gzipped = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  let text: string;
  try {
    text = (gzipped ? gunzipSync(body) : body).toString('utf8');
  } catch (err) {
    throw new BadPayload(400, `invalid gzip body: ${(err as Error).message}`);
  }
  try {
    return { json: JSON.parse(text), gzipped };
  } catch {
    throw new BadPayload(400, 'body is not JSON');
  }
}

function toEvents(json: unknown, path: string): { apiKey?: string; sentAt?: string; events: CapturedEvent[] } {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  let list: unknown[];
  let apiKey: string | undefined;
  let sentAt: string | undefined;
  if (Array.isArray(json)) list = json;
  else if (isObj(json)) {
    if (typeof json.api_key === 'string') apiKey = json.api_key;
    else if (typeof json.token === 'string') apiKey = json.token;
    if (typeof json.sent_at === 'string') sentAt = json.sent_at;
    list = Array.isArray(json.batch) ? json.batch : [json];
  } else throw new BadPayload(400, 'payload must be an object or an array');
  const events: CapturedEvent[] = [];
  for (const e of list) {
    if (!isObj(e) || typeof e.event !== 'string') throw new BadPayload(400, 'every event needs an "event" name');
    const props = isObj(e.properties) ? e.properties : {};
    const key =
      typeof e.api_key === 'string' ? e.api_key : typeof e.token === 'string' ? e.token : typeof props.token === 'string' ? props.token : apiKey;
    if (key === undefined || key === '') throw new BadPayload(401, 'API key not provided');
    events.push({
      event: e.event,
      distinct_id: e.distinct_id ?? props.distinct_id,
      uuid: typeof e.uuid === 'string' ? e.uuid : undefined,
      timestamp: typeof e.timestamp === 'string' ? e.timestamp : undefined,
      properties: props,
      apiKey: key,
      path,
      raw: e,
    });
  }
  return { apiKey, sentAt, events };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Starts the stand-in. Stop it in `afterAll`. */
export async function startPosthogStandin(opts: StandinOptions = {}): Promise<PosthogStandin> {
  const port = opts.port ?? standinDefaults.port;
  const host = opts.host ?? standinDefaults.host;
  let override: unknown = opts.flagDefinitions;
  let down: DownMode = false;
  const all: CapturedEvent[] = [];
  const unique: CapturedEvent[] = [];
  const seen = new Set<string>();
  const batches: CaptureRequest[] = [];
  const requests = new Map<string, number>();
  const log: RequestLogEntry[] = [];
  const rejected: { path: string; status: number; reason: string }[] = [];
  let waiters: { n: number; resolve: (e: CapturedEvent[]) => void }[] = [];
  let appending: Promise<void> = Promise.resolve();

  // The definitions as last read (the override, or the file on every request), and a posthog-node client
  // that evaluates them for /flags/ and /decide/.
  let current: { text: string; etag: string; data: FlagDefinitions } | undefined;
  let evaluatorStale = true;
  const readDefinitions = async () => {
    let text: string;
    if (override !== undefined) text = JSON.stringify(override);
    else if (opts.flagDefinitionsFile) text = await readFile(opts.flagDefinitionsFile, 'utf8').catch(() => JSON.stringify(EMPTY_FLAG_DEFINITIONS));
    else text = JSON.stringify(EMPTY_FLAG_DEFINITIONS);
    if (current?.text === text) return current;
    const data = JSON.parse(text) as FlagDefinitions;
    if (!Array.isArray(data.flags)) throw new Error(`${opts.flagDefinitionsFile ?? 'flag definitions'}: "flags" must be an array`);
    current = { text, etag: `"${createHash('sha1').update(text).digest('hex')}"`, data };
    evaluatorStale = true;
    return current;
  };
  const evaluator = new PostHog('phc_standin', {
    host: 'http://127.0.0.1:9',
    featureFlagsPollingInterval: null,
    strictLocalEvaluation: true,
    sendFeatureFlagEvent: false,
    enableExceptionAutocapture: false,
    flushAt: 1,
    flushInterval: 0,
    fetch: () => Promise.reject(new Error('the stand-in evaluator has no network')),
    flagDefinitionCacheProvider: {
      getFlagDefinitions: () => (current ? ({ group_type_mapping: {}, cohorts: {}, ...current.data } as unknown as FlagDefinitionCacheData) : undefined),
      shouldFetchFlagDefinitions: () => false,
      onFlagDefinitionsReceived: () => undefined,
      shutdown: () => undefined,
    },
  });
  const evaluate = async (body: Record<string, unknown>) => {
    const defs = await readDefinitions();
    if (evaluatorStale) {
      await evaluator.reloadFeatureFlags();
      evaluatorStale = false;
    }
    const distinctId = String(body.distinct_id ?? '');
    const o = {
      personProperties: (isRecord(body.person_properties) ? body.person_properties : {}) as Record<string, string>,
      groups: (isRecord(body.groups) ? body.groups : undefined) as Record<string, string> | undefined,
      groupProperties: (isRecord(body.group_properties) ? body.group_properties : undefined) as Record<string, Record<string, string>> | undefined,
      onlyEvaluateLocally: true,
      sendFeatureFlagEvents: false,
    };
    const flags: Record<string, unknown> = {};
    const featureFlags: Record<string, unknown> = {};
    const featureFlagPayloads: Record<string, unknown> = {};
    let errors = false;
    for (const flag of defs.data.flags) {
      const r = await evaluator.getFeatureFlagResult(flag.key, distinctId, o);
      if (r === undefined) {
        errors = true;
        continue;
      }
      featureFlags[flag.key] = r.enabled ? (r.variant ?? true) : false;
      if (r.payload !== undefined) featureFlagPayloads[flag.key] = r.payload;
      flags[flag.key] = {
        key: flag.key,
        enabled: r.enabled,
        variant: r.variant ?? null,
        reason: { code: r.enabled ? 'condition_match' : 'no_condition_match', description: 'Evaluated locally by the PostHog stand-in', condition_index: null },
        metadata: { id: flag.id ?? null, version: flag.version ?? null, payload: r.payload === undefined ? null : JSON.stringify(r.payload) },
      };
    }
    return { flags, featureFlags, featureFlagPayloads, errorsWhileComputingFlags: errors, requestId: 'standin' };
  };

  const record = (events: CapturedEvent[]) => {
    for (const e of events) {
      all.push(e);
      if (e.uuid === undefined) unique.push(e);
      else if (!seen.has(e.uuid)) {
        seen.add(e.uuid);
        unique.push(e);
      }
    }
    const max = opts.maxKept;
    if (max !== undefined) {
      for (const list of [all, unique, batches, log] as unknown[][]) if (list.length > max) list.splice(0, list.length - max);
      if (seen.size > max * 10) seen.clear();
    }
    waiters = waiters.filter((w) => {
      if (unique.length < w.n) return true;
      w.resolve(unique.slice());
      return false;
    });
    if (opts.capturedFile && events.length > 0) {
      const file = opts.capturedFile;
      const lines = events.map((e) => JSON.stringify({ event: e.event, distinct_id: e.distinct_id, uuid: e.uuid, timestamp: e.timestamp, properties: e.properties })).join('\n') + '\n';
      appending = appending.then(() => appendFile(file, lines)).catch(() => undefined);
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q === -1 ? url : url.slice(0, q);
    requests.set(p, (requests.get(p) ?? 0) + 1);
    log.push({ method: req.method ?? 'GET', path: p, query: q === -1 ? '' : url.slice(q + 1), headers: req.headers });
    if (down === 'destroy') {
      req.socket.destroy();
      return;
    }
    if (down) return send(res, 503, { type: 'server_error', detail: 'stand-in is down' });

    if (req.method === 'GET' && FLAG_DEFINITION_PATHS.has(p)) {
      void readDefinitions().then(
        (d) => {
          if (req.headers['if-none-match'] === d.etag) return void res.writeHead(304, { etag: d.etag }).end();
          res.writeHead(200, { 'content-type': 'application/json', etag: d.etag, 'content-length': Buffer.byteLength(d.text) });
          res.end(d.text);
        },
        (err: unknown) => send(res, 500, { type: 'server_error', detail: (err as Error).message }),
      );
      return;
    }
    if (req.method === 'POST' && REMOTE_FLAG_PATHS.has(p)) {
      let parsed: unknown;
      try {
        parsed = decodeBody(body).json;
      } catch {
        parsed = {};
      }
      void evaluate(isRecord(parsed) ? parsed : {}).then(
        (answer) => send(res, 200, answer),
        (err: unknown) => send(res, 500, { type: 'server_error', detail: (err as Error).message }),
      );
      return;
    }
    if (req.method === 'POST' && CAPTURE_PATHS.has(p)) {
      try {
        const { json, gzipped } = decodeBody(body);
        const parsed = toEvents(json, p);
        batches.push({ path: p, headers: req.headers, gzipped, apiKey: parsed.apiKey, sentAt: parsed.sentAt, events: parsed.events });
        record(parsed.events);
        return send(res, 200, { status: 1 });
      } catch (err) {
        const status = err instanceof BadPayload ? err.status : 400;
        rejected.push({ path: p, status, reason: (err as Error).message });
        return send(res, status, { type: 'validation_error', code: status === 401 ? 'invalid_api_key' : 'invalid_payload', detail: (err as Error).message });
      }
    }
    return send(res, 404, { type: 'invalid_request', detail: `no route ${req.method} ${p}` });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
    req.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;

  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    all,
    events: all,
    unique,
    batches,
    requests,
    log,
    rejected,
    setDown(mode) {
      down = mode === '503' ? true : mode;
    },
    setFlagDefinitions(json) {
      override = json;
    },
    count(p) {
      return requests.get(p) ?? 0;
    },
    waitForEvents(n, timeoutMs = 10_000) {
      if (unique.length >= n) return Promise.resolve(unique.slice());
      return new Promise((resolve, reject) => {
        const w = {
          n,
          resolve: (e: CapturedEvent[]) => {
            clearTimeout(t);
            resolve(e);
          },
        };
        const t = setTimeout(() => {
          waiters = waiters.filter((x) => x !== w);
          reject(new Error(`expected ${n} unique events within ${timeoutMs} ms, got ${unique.length}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    reset() {
      all.length = 0;
      unique.length = 0;
      seen.clear();
      batches.length = 0;
      requests.clear();
      log.length = 0;
      rejected.length = 0;
      down = false;
      override = opts.flagDefinitions;
    },
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          server.closeAllConnections();
        });
        await appending;
        await evaluator.shutdown(1000).catch(() => undefined);
      })();
      return stopped;
    },
  };
}

/** Alias with the name the tests use: `await start({ port: 0 })`. */
export const start = startPosthogStandin;
