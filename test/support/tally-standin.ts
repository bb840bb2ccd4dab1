/**
 * A real HTTP server standing in for tally's `POST /v1/usage`, for the client's tests and its
 * benchmark: it decodes the body as tally does (gzip recognised by its magic bytes), checks the key,
 * records every request, and counts events **the way tally does**: a request whose sequence of uuids
 * it has already taken is acknowledged and counted nothing (tally's message ids are digests of the
 * uuids in order). So `countedTwice()` finds uuids tally would have counted twice, and `lost(uuids)`
 * those it never counted.
 *
 * How it answers is scripted per request with `respond` (default: 202 `{"accepted":n}`); `'lose'`
 * takes the batch and then destroys the socket, as when an answer is lost on the way back.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One request as the stand-in received it. */
export interface StandinRequest {
  at: number;
  headers: IncomingHttpHeaders;
  gzipped: boolean;
  bytes: number;
  uuids: string[];
  events: Array<Record<string, unknown>>;
  /** What it answered (`lose`: took it, answered nothing). */
  answer: number | 'lose';
  /** Whether it counted this request (false: a repeat of a request already counted, or refused). */
  counted: boolean;
}

/** How to answer one request: a status with headers and body, or `lose` (count it, destroy the socket). */
export type StandinAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'lose';

export interface TallyStandin {
  url: string;
  port: number;
  requests: StandinRequest[];
  /** Per uuid, how many times it was counted. */
  counts: Map<string, number>;
  /** Decides each answer; the default takes every batch. */
  respond: (req: StandinRequest, index: number) => StandinAnswer;
  /** Counted calls per `distinctId` / per event name. */
  countedBy(field: 'distinctId' | 'event'): Map<string, number>;
  countedTwice(): string[];
  lost(tracked: Iterable<string>): string[];
  /** Forgets every request and count. */
  reset(): void;
  /** Stops listening (new connections are refused) and drops open connections: tally unreachable. */
  goDown(): Promise<void>;
  /** Listens again on the same port. */
  comeBack(): Promise<void>;
  stop(): Promise<void>;
}

export const accept: TallyStandin['respond'] = (r) => ({ status: 202, body: JSON.stringify({ accepted: r.uuids.length }) });

export async function startTallyStandin(o: { port?: number; key?: string } = {}): Promise<TallyStandin> {
  const key = o.key ?? 'tally_standin_key';
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  const byField = { distinctId: new Map<string, number>(), event: new Map<string, number>() };
  const sockets = new Set<Socket>();
  const requests: StandinRequest[] = [];

  const standin: TallyStandin = {
    url: '',
    port: 0,
    requests,
    counts,
    respond: accept,
    countedBy: (field) => byField[field],
    countedTwice: () => [...counts].filter(([, n]) => n > 1).map(([u]) => u),
    lost: (tracked) => [...tracked].filter((u) => !counts.has(u)),
    reset: () => {
      requests.length = 0;
      seen.clear();
      counts.clear();
      byField.distinctId.clear();
      byField.event.clear();
    },
    goDown: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      // close() waits for open connections: end them, as a crashed server would.
      for (const s of sockets) s.destroy();
      await closed;
    },
    comeBack: () => new Promise<void>((r) => server.listen(standin.port, '127.0.0.1', () => r())),
    stop: async () => {
      if (!server.listening) return;
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const gzipped = raw.length > 1 && raw[0] === 0x1f && raw[1] === 0x8b;
      const entry: StandinRequest = { at: Date.now(), headers: req.headers, gzipped, bytes: raw.length, uuids: [], events: [], answer: 0, counted: false };
      const answer = (status: number, body: unknown) => {
        entry.answer = status;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v1/usage') return answer(404, { error: 'not_found' });
      if (req.headers.authorization !== `Bearer ${key}`) return answer(401, { error: 'unauthorized', message: 'unknown API key' });
      let body: { batch?: Array<Record<string, unknown>> };
      try {
        body = JSON.parse((gzipped ? gunzipSync(raw) : raw).toString('utf8')) as typeof body;
      } catch {
        return answer(400, { error: 'invalid_request', message: 'malformed JSON' });
      }
      entry.events = Array.isArray(body.batch) ? body.batch : [body as Record<string, unknown>];
      entry.uuids = entry.events.map((e) => String(e.uuid));
      const index = requests.push(entry) - 1;
      const a = standin.respond(entry, index);
      const takes = a === 'lose' || (a.status >= 200 && a.status < 300);
      if (takes) {
        const id = entry.uuids.join(',');
        if (!seen.has(id)) {
          seen.add(id);
          entry.counted = true;
          for (const e of entry.events) {
            const u = String(e.uuid);
            counts.set(u, (counts.get(u) ?? 0) + 1);
            for (const f of ['distinctId', 'event'] as const) {
              const k = String(e[f] ?? 'api_call');
              byField[f].set(k, (byField[f].get(k) ?? 0) + 1);
            }
          }
        }
      }
      if (a === 'lose') {
        entry.answer = 'lose';
        req.socket.destroy();
        return;
      }
      entry.answer = a.status;
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body ?? '');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(o.port ?? 0, '127.0.0.1', () => r()));
  standin.port = (server.address() as AddressInfo).port;
  standin.url = `http://127.0.0.1:${standin.port}`;
  return standin;
}
