/**
 * The post-deploy smoke test (`npm run smoke -- --url <api> --key <key>`): what real clients send, against
 * a deployed tally (or `npm start`), one PASS/FAIL line per check, then the counts read back.
 *
 * - an unmodified posthog-node client, default settings (gzip to `/batch/`);
 * - a posthog-js-shaped request: a gzip body as `text/plain` to `/e/?compression=gzip-js`, the key in
 *   `properties.token` (the case API Gateway may hand over as text: a `body_altered_in_transit` 400 names
 *   the client setting to change);
 * - every PostHog capture route of the route table, with and without the trailing slash;
 * - native single and batch;
 * - a CORS preflight (allowed when `--origin` is one of the deployment's `corsOrigins`, refused otherwise);
 * - an oversized body (tally's own 413, not the front door's) and a bad key (tally's 401, not a 404);
 * - the counts, read back with `GET /v1/usage` until they appear (they follow the aggregator's run).
 *
 * Every check uses one event name and distinct id made for this run, so runs never see each other's counts.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PostHog } from 'posthog-node';
import { POSTHOG_CAPTURE_PATHS } from '../src/http/route-table';

export interface SmokeOptions {
  /** Base URL of the API (the `ApiUrl` output, or `npm start`'s URL). */
  url: string;
  key: string;
  /** A browser origin the deployment allows (`corsOrigins`): the preflight must then allow it. */
  origin?: string;
  /** How long to wait for the counts to appear. */
  countTimeoutMs?: number;
  /** Per HTTP request. */
  requestTimeoutMs?: number;
  /** Called with each result as it is known. */
  onResult?: (r: SmokeResult) => void;
}

export interface SmokeResult {
  name: string;
  pass: boolean;
  detail: string;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json?: Record<string, unknown>;
}

/** Runs every check; resolves with one result per check (never rejects). */
export async function runSmoke(o: SmokeOptions): Promise<SmokeResult[]> {
  const base = o.url.replace(/\/+$/, '');
  const run = randomBytes(4).toString('hex');
  const event = `smoke_${run}`;
  const user = `smoke-user-${run}`;
  const results: SmokeResult[] = [];
  const timeout = o.requestTimeoutMs ?? 15_000;
  let expected = 0;

  const record = (name: string, pass: boolean, detail: string) => {
    const r = { name, pass, detail };
    results.push(r);
    o.onResult?.(r);
    return pass;
  };
  const call = async (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${base}${path}`, { method, body, headers, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const describe = (a: Answer) => `${a.status} ${a.text.slice(0, 160)}`;
  const check = async (name: string, fn: () => Promise<[boolean, string]>, counts = 0) => {
    try {
      const [pass, detail] = await fn();
      if (record(name, pass, detail)) expected += counts;
    } catch (err) {
      record(name, false, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    }
  };
  const phEvent = (extra: Record<string, unknown> = {}) => ({ event, distinct_id: user, properties: { smoke: true, ...extra } });

  await check('health', async () => {
    const a = await call('GET', '/health');
    return [a.status === 200 && a.json?.status === 'ok', describe(a)];
  });

  const PH_EVENTS = 5;
  await check(
    'posthog-node, default settings (gzip POST /batch/)',
    async () => {
      const errors: unknown[] = [];
      const ph = new PostHog(o.key, { host: base, flushAt: PH_EVENTS, flushInterval: 0, fetchRetryCount: 0, requestTimeout: timeout });
      ph.on('error', (e: unknown) => errors.push(e));
      for (let i = 0; i < PH_EVENTS; i++) ph.capture({ distinctId: user, event, properties: { smoke: 'posthog-node', i } });
      await ph.flush();
      await ph.shutdown();
      return [errors.length === 0, errors.length ? String(errors[0]) : `${PH_EVENTS} events accepted`];
    },
    PH_EVENTS,
  );

  const JS_EVENTS = 3;
  await check(
    'posthog-js shape (gzip as text/plain, POST /e/?compression=gzip-js, key in properties.token)',
    async () => {
      const body = gzipSync(JSON.stringify(Array.from({ length: JS_EVENTS }, (_, i) => phEvent({ token: o.key, $lib: 'web', i }))));
      const a = await call('POST', `/e/?compression=gzip-js&ver=1.200.0&_=${Date.now()}`, body, { 'content-type': 'text/plain' });
      const ok = a.status === 200 && a.json?.status === 1;
      return [ok, ok ? `${JS_EVENTS} events accepted` : describe(a)];
    },
    JS_EVENTS,
  );

  for (const route of POSTHOG_CAPTURE_PATHS) {
    for (const path of [route, `${route}/`]) {
      await check(
        `capture route POST ${path}`,
        async () => {
          const a = await call('POST', path, JSON.stringify({ api_key: o.key, batch: [phEvent({ route: path })] }), { 'content-type': 'application/json' });
          return [a.status === 200 && a.json?.status === 1, describe(a)];
        },
        1,
      );
    }
  }

  const auth = { authorization: `Bearer ${o.key}`, 'content-type': 'application/json' };
  await check(
    'native single event (POST /v1/usage)',
    async () => {
      const a = await call('POST', '/v1/usage', JSON.stringify({ distinctId: user, event, properties: { smoke: 'native' } }), auth);
      return [a.status === 202 && a.json?.accepted === 1, describe(a)];
    },
    1,
  );
  const BATCH = 20;
  await check(
    `native batch of ${BATCH} (POST /v1/usage)`,
    async () => {
      const a = await call('POST', '/v1/usage', JSON.stringify({ batch: Array.from({ length: BATCH }, () => ({ distinctId: user, event })) }), { ...auth, 'idempotency-key': `smoke-${run}` });
      return [a.status === 202 && a.json?.accepted === BATCH, describe(a)];
    },
    BATCH,
  );

  await check('CORS preflight (OPTIONS /batch/)', async () => {
    const origin = o.origin ?? 'https://smoke-test.invalid';
    const a = await call('OPTIONS', '/batch/', undefined, { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    const allowed = a.headers.get('access-control-allow-origin');
    if (o.origin) return [a.status < 300 && (allowed === o.origin || allowed === '*'), `${a.status}, allow-origin ${allowed ?? 'none'} (expected ${o.origin})`];
    // Without --origin: an origin no deployment lists must not be allowed.
    return [allowed === null || (allowed !== origin && allowed !== '*'), `${a.status}, allow-origin ${allowed ?? 'none'} for an unlisted origin`];
  });

  await check('oversized body: tally’s own 413 (POST /capture/, 2.5 MB > the 2 MB limit)', async () => {
    const a = await call('POST', '/capture/', JSON.stringify({ api_key: o.key, ...phEvent({ blob: 'x'.repeat(2_500_000) }) }), { 'content-type': 'application/json' });
    return [a.status === 413 && a.json?.error === 'payload_too_large', describe(a)];
  });

  await check('bad key: tally’s own 401 (POST /batch/)', async () => {
    const a = await call('POST', '/batch/', JSON.stringify({ api_key: `wrong-${run}-key`, batch: [phEvent()] }), { 'content-type': 'application/json' });
    return [a.status === 401 && a.json?.error === 'unauthorized', describe(a)];
  });

  await check(`counts read back (GET /v1/usage, event ${event})`, async () => {
    const deadline = Date.now() + (o.countTimeoutMs ?? 60_000);
    const qs = new URLSearchParams({ event, distinctId: user, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
    let last = '';
    for (;;) {
      const a = await call('GET', `/v1/usage?${qs}`, undefined, { authorization: `Bearer ${o.key}` });
      const total = a.json?.total;
      last = a.status === 200 ? `total ${String(total)} of ${expected} expected` : describe(a);
      if (a.status === 200 && total === expected) return [true, last];
      if (a.status === 200 && typeof total === 'number' && total > expected) return [false, `${last}: counted more than was sent`];
      if (a.status !== 200 && a.status !== 503) return [false, last];
      if (Date.now() > deadline) return [false, `${last} after ${Math.round((o.countTimeoutMs ?? 60_000) / 1000)} s`];
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

  return results;
}
