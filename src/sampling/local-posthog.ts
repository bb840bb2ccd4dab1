/**
 * A local stand-in for the parts of PostHog the ingest function talks to, for `npm start` without
 * PostHog keys. It listens on its own loopback port, apart from tally's front, so raw sampled events
 * posted to its `/batch/` can never loop back into tally's own `/batch/` (which counts).
 *
 * - `GET /flags/definitions`: the definitions file (`local/flags-definitions.json`, or `TALLY_FLAGS_FILE`),
 *   read on every request so an edit applies at the next poll, with an ETag (304 when unchanged).
 * - `POST /batch/` (and `/capture/`, `/e/`, `/i/v0/e/`): raw sampled events, appended to a JSONL file
 *   (`$TALLY_DATA_DIR/posthog-sampled.jsonl`) and kept in `events`.
 * - `POST /flags/`, `/decide/`: the definitions evaluated locally by posthog-node for the request's
 *   `distinct_id`, `person_properties`, `groups` and `group_properties`, in the shape of PostHog's answer
 *   (v2 `flags` plus the older `featureFlags`/`featureFlagPayloads`), so tally's flag routes work
 *   offline too.
 */
import { createHash } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { PostHog, type FlagDefinitionCacheData } from 'posthog-node';
import type { FlagDefinitions } from './flag';

export interface LocalPosthogOptions {
  /** The flag definitions JSON, in the shape of PostHog's `/flags/definitions` answer. */
  flagsFile: string;
  /** JSONL file raw captures are appended to; none when unset. */
  capturedFile?: string;
  port?: number;
  host?: string;
}

/** An event as the local endpoint received it. */
export interface LocalCapturedEvent {
  event: string;
  distinct_id: unknown;
  uuid?: string;
  timestamp?: string;
  properties: Record<string, unknown>;
}

export interface LocalPosthog {
  url: string;
  /** Raw events received, in order: the last {@link MAX_EVENTS_KEPT}. */
  readonly events: LocalCapturedEvent[];
  /** Requests per path. */
  readonly requests: Map<string, number>;
  stop(): Promise<void>;
}

/** Raw events kept in memory (the JSONL file, when set, has every one). */
export const MAX_EVENTS_KEPT = 10_000;

const CAPTURE = new Set(['/batch', '/capture', '/e', '/i/v0/e']);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startLocalPosthog(o: LocalPosthogOptions): Promise<LocalPosthog> {
  const events: LocalCapturedEvent[] = [];
  const requests = new Map<string, number>();
  let appending: Promise<void> = Promise.resolve();

  // The definitions as last read, and a posthog-node client that evaluates them for /flags/.
  let current: { text: string; etag: string; data: FlagDefinitions } | undefined;
  const readDefinitions = async () => {
    const text = await readFile(o.flagsFile, 'utf8');
    if (current?.text === text) return current;
    const data = JSON.parse(text) as FlagDefinitions;
    if (!Array.isArray(data.flags)) throw new Error(`${o.flagsFile}: "flags" must be an array`);
    current = { text, etag: `"${createHash('sha1').update(text).digest('hex')}"`, data };
    evaluatorStale = true;
    return current;
  };
  let evaluatorStale = true;
  const evaluator = new PostHog('phc_local', {
    host: 'http://127.0.0.1:9',
    featureFlagsPollingInterval: null,
    strictLocalEvaluation: true,
    sendFeatureFlagEvent: false,
    enableExceptionAutocapture: false,
    flushAt: 1,
    flushInterval: 0,
    fetch: () => Promise.reject(new Error('the local evaluator has no network')),
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
    const opts = {
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
      const r = await evaluator.getFeatureFlagResult(flag.key, distinctId, opts);
      if (r === undefined) {
        errors = true;
        continue;
      }
      const value = r.enabled ? (r.variant ?? true) : false;
      featureFlags[flag.key] = value;
      if (r.payload !== undefined) featureFlagPayloads[flag.key] = r.payload;
      flags[flag.key] = {
        key: flag.key,
        enabled: r.enabled,
        variant: r.variant ?? null,
        reason: { code: r.enabled ? 'condition_match' : 'no_condition_match', description: 'Evaluated locally by tally', condition_index: null },
        metadata: { id: flag.id ?? null, version: flag.version ?? null, payload: r.payload === undefined ? null : JSON.stringify(r.payload) },
      };
    }
    return { flags, featureFlags, featureFlagPayloads, errorsWhileComputingFlags: errors, requestId: 'tally-local' };
  };

  const record = async (raw: Buffer) => {
    const gz = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
    const json: unknown = JSON.parse((gz ? gunzipSync(raw) : raw).toString('utf8'));
    const list = Array.isArray(json) ? json : isRecord(json) && Array.isArray(json.batch) ? json.batch : [json];
    const got: LocalCapturedEvent[] = [];
    for (const e of list) {
      if (!isRecord(e) || typeof e.event !== 'string') throw new Error('every event needs an "event" name');
      got.push({
        event: e.event,
        distinct_id: e.distinct_id,
        uuid: typeof e.uuid === 'string' ? e.uuid : undefined,
        timestamp: typeof e.timestamp === 'string' ? e.timestamp : undefined,
        properties: isRecord(e.properties) ? e.properties : {},
      });
    }
    events.push(...got);
    // Memory stays bounded however long `npm start` runs: the JSONL file keeps everything.
    if (events.length > MAX_EVENTS_KEPT) events.splice(0, events.length - MAX_EVENTS_KEPT);
    if (o.capturedFile && got.length > 0) {
      const file = o.capturedFile;
      const lines = got.map((e) => JSON.stringify(e)).join('\n') + '\n';
      appending = appending.then(() => appendFile(file, lines)).catch(() => undefined);
      await appending;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    try {
      if (req.method === 'GET' && path === '/flags/definitions') {
        const d = await readDefinitions();
        if (req.headers['if-none-match'] === d.etag) return send(res, 304, undefined, { etag: d.etag });
        res.writeHead(200, { 'content-type': 'application/json', etag: d.etag, 'content-length': Buffer.byteLength(d.text) });
        return void res.end(d.text);
      }
      if (req.method === 'POST' && CAPTURE.has(path)) {
        await record(body);
        return send(res, 200, { status: 1 });
      }
      if (req.method === 'POST' && (path === '/flags' || path === '/decide')) {
        const gz = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
        const parsed: unknown = JSON.parse((gz ? gunzipSync(body) : body).toString('utf8') || '{}');
        return send(res, 200, await evaluate(isRecord(parsed) ? parsed : {}));
      }
      return send(res, 404, { type: 'invalid_request', detail: `no route ${req.method} ${path}` });
    } catch (err) {
      return send(res, err instanceof SyntaxError ? 400 : 500, { type: 'server_error', detail: (err as Error).message });
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)));
    req.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    url: `http://${o.host ?? '127.0.0.1'}:${port}`,
    events,
    requests,
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        });
        await appending;
        await evaluator.shutdown(1000).catch(() => undefined);
      })();
      return stopped;
    },
  };
}
