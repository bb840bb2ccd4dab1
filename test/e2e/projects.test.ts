/**
 * Projects and keys end to end on the local stack (issue 9), every part real: the CLI (`npm run tally`)
 * against the running stack's DynamoDB, HTTP requests to the front, fauxqs, the aggregator, dynalite, and
 * posthog-node to PostHog stand-ins — one per project with its own PostHog, one for the deployment's:
 *
 * - create → use → rotate (both keys during the grace, only the new one after) → revoke (401 within the
 *   cache TTL, 1 s here; 30 s by default);
 * - a client token from `POST /v1/tokens` used by a posthog-js-shaped request (gzip as `text/plain`, the
 *   token as the key) from an allowed origin; expired; for another distinct id; from another origin;
 * - rate limit and quota answers, with nothing of those requests counted;
 * - IP `anonymise` and `drop`, seen in what reaches SQS and what reaches PostHog;
 * - two projects whose counts and PostHog destinations never mix;
 * - the key store down: cached keys still accepted, an unknown key 503, nothing queued for it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { run } from '../../cli/tally';
import { localAwsClientConfig } from '../../local/emulators';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { PostHogNodeSink } from '../../src/sink/posthog';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { faultyApi } from '../support/store';
import { startPosthogStandin, type PosthogStandin } from '../support/posthog-standin';

jest.setTimeout(120_000);

const LOCAL_KEY = 'tally_e2e_projects_key_0123';
const ORIGIN = 'https://shop.example.com';
const KEY_TTL_MS = 1000;
let stack: LocalStack;
let dir: string;
let keyStoreDown = false;
const standins: Record<'deployment' | 'alpha' | 'beta', PosthogStandin> = {} as never;

beforeAll(async () => {
  for (const name of ['deployment', 'alpha', 'beta'] as const) standins[name] = await startPosthogStandin({ port: 0 });
  stack = await startLocalStack({
    port: 0,
    apiKey: LOCAL_KEY,
    sink: new PostHogNodeSink({ apiKey: 'phc_deployment', host: standins.deployment.url, requestTimeoutMs: 2000, fetchRetryCount: 0 }),
    keyCacheTtlMs: KEY_TTL_MS,
    quotaMaxAgeMs: 200,
    keyStoreApi: (api) => faultyApi(api, () => keyStoreDown),
    batchWindowMs: 100,
    windowSeconds: 10,
    graceSeconds: 4,
    staleSeconds: 4,
    rollupIntervalMs: 500,
  });
  // The CLI finds this stack as it finds `npm start`: through stack.json in the data directory.
  dir = mkdtempSync(join(tmpdir(), 'tally-e2e-projects-'));
  writeFileSync(join(dir, 'stack.json'), JSON.stringify({ pid: process.pid, url: stack.url, dynamoEndpoint: stack.dynamoEndpoint, tableName: stack.tableName }));
});
afterAll(async () => {
  await stack?.stop();
  for (const s of Object.values(standins)) await s?.stop();
});

async function tally(...args: string[]): Promise<any> {
  const r = await run([...args, '--json'], { TALLY_DATA_DIR: dir });
  if (r.code !== 0) throw new Error(`tally ${args.join(' ')}: ${r.out}`);
  return JSON.parse(r.out);
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}
async function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await fetch(`${stack.url}${path}`, { method, body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : undefined };
}
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const native = (key: string, distinctId: string, event: string, extra: Record<string, string> = {}) => call('POST', '/v1/usage', JSON.stringify({ distinctId, event }), { ...bearer(key), ...extra });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The project's total of `event` today, as its own query key reads it (after the queue drained). */
async function total(queryKey: string, event: string): Promise<number> {
  await stack.settle();
  const qs = new URLSearchParams({ event, granularity: 'day', from: String(Date.now() - 86_400_000), to: String(Date.now() + 86_400_000) });
  const r = await call('GET', `/v1/usage?${qs}`, undefined, bearer(queryKey));
  if (r.status !== 200) throw new Error(`query answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.total as number;
}

describe('keys: create → use → rotate → revoke, through the CLI, without a deploy', () => {
  it('both keys work during the grace, only the new one after; a revoked key is refused within the cache TTL', async () => {
    await tally('projects', 'create', 'shop', '--origins', ORIGIN);
    const key = await tally('keys', 'create', '--project', 'shop', '--name', 'backend', '--scopes', 'ingest,query');
    expect(key.key).toMatch(/^tk_[0-9A-Za-z]{40}$/);
    expect((await native(key.key, 'u1', 'rotation')).status).toBe(202);

    const rotated = await tally('keys', 'rotate', key.id, '--grace', '3s');
    expect((await native(key.key, 'u1', 'rotation')).status).toBe(202);
    expect((await native(rotated.key, 'u1', 'rotation')).status).toBe(202);
    await sleep(3000 + KEY_TTL_MS + 200); // past the grace, and past the cache TTL
    const old = await native(key.key, 'u1', 'rotation');
    expect(old).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect((await native(rotated.key, 'u1', 'rotation')).status).toBe(202);

    await tally('keys', 'revoke', rotated.id);
    const t0 = Date.now();
    let status = 202;
    while (status === 202 && Date.now() - t0 < 5000) {
      status = (await native(rotated.key, 'u1', 'rotation-after-revoke')).status;
      if (status === 202) await sleep(100);
    }
    expect(status).toBe(401);
    expect(Date.now() - t0).toBeLessThan(KEY_TTL_MS + 1000);
    // Counted: what was accepted, and none of what was refused.
    const reader = await tally('keys', 'create', '--project', 'shop', '--scopes', 'query');
    expect(await total(reader.key, 'rotation')).toBe(4);
    expect(await total(LOCAL_KEY, 'rotation')).toBe(0); // another project's key sees none of it
  });
});

describe('client tokens (posthog-js in a browser)', () => {
  let server: string;
  let reader: string;
  beforeAll(async () => {
    await tally('projects', 'create', 'webapp', '--origins', ORIGIN);
    server = (await tally('keys', 'create', '--project', 'webapp', '--scopes', 'ingest')).key;
    reader = (await tally('keys', 'create', '--project', 'webapp', '--scopes', 'query')).key;
  });

  /** posthog-js's shape: gzip sent as text/plain to /e/?compression=gzip-js, the key in each event (and api_key). */
  const jsBody = (token: string, ids: string[], event: string) =>
    gzipSync(JSON.stringify({ api_key: token, batch: ids.map((id, i) => ({ event, properties: { distinct_id: id, token, $lib: 'web', i } })) }));
  const js = (token: string, ids: string[], event: string, origin = ORIGIN) =>
    call('POST', `/e/?compression=gzip-js&ver=1.200.0&_=${Date.now()}`, jsBody(token, ids, event), { 'content-type': 'text/plain', origin });

  it('from an allowed origin: the preflight and the request are allowed, and the events count for the project', async () => {
    const minted = await call('POST', '/v1/tokens', JSON.stringify({ distinctId: 'browser-user' }), bearer(server));
    expect(minted.status).toBe(201);
    expect(Date.parse(minted.body.expiresAt) - Date.now()).toBeGreaterThan(890_000);
    const pre = await call('OPTIONS', '/e/', undefined, { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const r = await js(minted.body.token, ['browser-user', 'browser-user'], 'js_call');
    expect(r).toMatchObject({ status: 200, body: { status: 1 } });
    expect(r.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    // posthog-js's other shape: an array of events, the token in each event's properties.
    const arr = gzipSync(JSON.stringify([{ event: 'js_call', properties: { distinct_id: 'browser-user', token: minted.body.token } }]));
    expect((await call('POST', '/e/?compression=gzip-js', arr, { 'content-type': 'text/plain', origin: ORIGIN })).status).toBe(200);
    expect(await total(reader, 'js_call')).toBe(3);
  });

  it('expired: 401 token_expired; for another distinct id: 403; from another origin: 403; none of it counted', async () => {
    const short = (await call('POST', '/v1/tokens', JSON.stringify({ distinctId: 'browser-user', ttlSeconds: 1 }), bearer(server))).body.token as string;
    const fresh = (await call('POST', '/v1/tokens', JSON.stringify({ distinctId: 'browser-user' }), bearer(server))).body.token as string;
    const wrongId = await js(fresh, ['browser-user', 'someone-else'], 'js_refused');
    expect(wrongId).toMatchObject({ status: 403, body: { error: 'forbidden', details: [{ path: 'batch.1.distinct_id' }] } });
    const otherOrigin = await js(fresh, ['browser-user'], 'js_refused', 'https://evil.example');
    expect(otherOrigin).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(otherOrigin.headers.get('access-control-allow-origin')).toBeNull();
    await sleep(1100);
    const expired = await js(short, ['browser-user'], 'js_refused');
    expect(expired).toMatchObject({ status: 401, body: { error: 'token_expired' } });
    // A token is no key for reading, or for minting more.
    expect((await call('GET', '/v1/usage?event=js_call', undefined, bearer(fresh))).status).toBe(403);
    expect((await call('POST', '/v1/tokens', '{}', bearer(fresh))).status).toBe(403);
    expect(await total(reader, 'js_refused')).toBe(0);
  });
});

describe('limits', () => {
  it('rate limit: 429 rate_limited with Retry-After; what was refused is not counted', async () => {
    await tally('projects', 'create', 'limited', '--rate', '5', '--burst', '5');
    const k = await tally('keys', 'create', '--project', 'limited', '--scopes', 'ingest,query');
    const tooBig = await call('POST', '/v1/usage', JSON.stringify({ batch: Array.from({ length: 6 }, () => ({ distinctId: 'u', event: 'rl' })) }), bearer(k.key));
    expect(tooBig).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
    let accepted = 0;
    const refused: Answer[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 15; i++) {
      const r = await native(k.key, 'u', 'rl');
      if (r.status === 202) accepted++;
      else refused.push(r);
    }
    const seconds = (Date.now() - t0) / 1000;
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r).toMatchObject({ status: 429, body: { error: 'rate_limited' } });
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(accepted).toBeLessThanOrEqual(5 + Math.ceil(5 * seconds));
    expect(await total(k.key, 'rl')).toBe(accepted);
  });

  it('monthly quota: once the counted calls reach it, 429 quota_exceeded; nothing more counted', async () => {
    await tally('projects', 'create', 'capped', '--quota', '3');
    const k = await tally('keys', 'create', '--project', 'capped', '--scopes', 'ingest,query');
    expect((await call('POST', '/v1/usage', JSON.stringify({ batch: [1, 2, 3].map(() => ({ distinctId: 'u', event: 'q' })) }), bearer(k.key))).status).toBe(202);
    expect(await total(k.key, 'q')).toBe(3);
    await sleep(250); // the quota's month total is re-read after quotaMaxAgeMs (a minute by default)
    const over = await native(k.key, 'u', 'q');
    expect(over).toMatchObject({ status: 429, body: { error: 'quota_exceeded' } });
    expect(await total(k.key, 'q')).toBe(3);
  });
});

describe('IP policy: what reaches SQS, and what reaches PostHog', () => {
  it('anonymise and drop apply to the client address and to $ip, before anything is queued', async () => {
    await tally('projects', 'create', 'anon', '--ip', 'anonymise');
    await tally('projects', 'create', 'noip', '--ip', 'drop');
    const anon = (await tally('keys', 'create', '--project', 'anon')).key;
    const noip = (await tally('keys', 'create', '--project', 'noip')).key;
    const body = (key: string) => JSON.stringify({ api_key: key, batch: [{ event: 'ip_call', distinct_id: 'u' }, { event: '$pageview', distinct_id: 'u', properties: { $ip: '2001:db8:abcd:12::1', $current_url: 'https://x' } }] });

    await stack.poller.stop(); // read the queue before the aggregator does
    let events: QueuedEvent[] = [];
    try {
      expect((await call('POST', '/batch/', body(anon))).status).toBe(200);
      expect((await call('POST', '/batch/', body(noip))).status).toBe(200);
      const sqs = new SQSClient(localAwsClientConfig(stack.sqsEndpoint, 'us-east-1'));
      try {
        const seen = new Map<string, QueuedEvent>();
        for (let i = 0; i < 10 && seen.size < 4; i++) {
          // Visibility 0: the messages stay for the aggregator once the poller is back.
          const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 0 }));
          for (const m of r.Messages ?? []) for (const e of (JSON.parse(m.Body!) as QueueMessageBody).events) if (e.project === 'anon' || e.project === 'noip') seen.set(e.uuid, e);
        }
        events = [...seen.values()];
      } finally {
        sqs.destroy();
      }
    } finally {
      await stack.poller.start();
    }
    const of = (project: string) => events.filter((e) => e.project === project).map((e) => [e.event, e.ip, e.properties.$ip]);
    expect(of('anon')).toEqual([
      ['ip_call', '127.0.0.0', undefined],
      ['$pageview', '127.0.0.0', '2001:db8:abcd::'],
    ]);
    expect(of('noip')).toEqual([
      ['ip_call', undefined, undefined],
      ['$pageview', undefined, undefined],
    ]);

    // The forwarded $pageview reaches PostHog (the deployment's: neither project has its own) as anonymised, or without any address.
    await stack.rolledUp(60_000, { delivered: true });
    const pageviews = standins.deployment.unique.filter((e) => e.event === '$pageview' && e.properties.$current_url === 'https://x');
    expect(pageviews.map((e) => e.properties.$ip ?? null).sort()).toEqual(['2001:db8:abcd::', null]);
    expect(JSON.stringify(standins.deployment.all)).not.toContain('2001:db8:abcd:12::1');
  });
});

describe('two projects', () => {
  it('counts and PostHog destinations never mix', async () => {
    await tally('projects', 'create', 'alpha', '--posthog-key', 'phc_alphaprojectkey', '--posthog-host', standins.alpha.url);
    await tally('projects', 'create', 'beta', '--posthog-key', 'phc_betaprojectkey', '--posthog-host', standins.beta.url);
    const alpha = (await tally('keys', 'create', '--project', 'alpha', '--scopes', 'ingest,query')).key;
    const beta = (await tally('keys', 'create', '--project', 'beta', '--scopes', 'ingest,query')).key;
    // The same event name and the same users in both.
    const send = (key: string, n: number) => call('POST', '/v1/usage', JSON.stringify({ batch: Array.from({ length: n }, (_, i) => ({ distinctId: `user-${i % 3}`, event: 'shared_call' })) }), bearer(key));
    expect((await send(alpha, 30)).status).toBe(202);
    expect((await send(beta, 12)).status).toBe(202);
    expect((await send(alpha, 6)).status).toBe(202);
    expect([await total(alpha, 'shared_call'), await total(beta, 'shared_call'), await total(LOCAL_KEY, 'shared_call')]).toEqual([36, 12, 0]);
    const users = async (key: string) => ((await call('GET', '/v1/usage/users?event=shared_call', undefined, bearer(key))).body.users as Array<{ distinctId: string; calls: number }>).sort((a, b) => (a.distinctId < b.distinctId ? -1 : 1));
    expect(await users(beta)).toEqual([0, 1, 2].map((u) => ({ distinctId: `user-${u}`, calls: 4 })));
    expect(await users(alpha)).toEqual([0, 1, 2].map((u) => ({ distinctId: `user-${u}`, calls: 12 })));

    await stack.rolledUp(60_000, { delivered: true });
    const batchOf = (s: PosthogStandin) => s.unique.filter((e) => e.event === 'shared_call_batch');
    const sum = (s: PosthogStandin) => batchOf(s).reduce((n, e) => n + (e.properties.calls as number), 0);
    expect([sum(standins.alpha), sum(standins.beta), sum(standins.deployment)]).toEqual([36, 12, 0]);
    expect(batchOf(standins.alpha).every((e) => e.apiKey === 'phc_alphaprojectkey')).toBe(true);
    expect(batchOf(standins.beta).every((e) => e.apiKey === 'phc_betaprojectkey')).toBe(true);
  });
});

describe('the key store down', () => {
  it('keys cached keep working; a key not cached gets 503 auth_unavailable, and nothing of it is queued', async () => {
    await tally('projects', 'create', 'resilient');
    const cached = (await tally('keys', 'create', '--project', 'resilient', '--scopes', 'ingest,query')).key;
    const unknown = (await tally('keys', 'create', '--project', 'resilient', '--scopes', 'ingest')).key;
    expect((await native(cached, 'u', 'outage')).status).toBe(202);
    keyStoreDown = true;
    try {
      await sleep(KEY_TTL_MS + 100); // the cached entry is stale: its refresh fails, and it is served stale
      expect((await native(cached, 'u', 'outage')).status).toBe(202);
      const r = await native(unknown, 'u', 'outage');
      expect(r).toMatchObject({ status: 503, body: { error: 'auth_unavailable' } });
      expect(r.headers.get('retry-after')).toBe('1');
    } finally {
      keyStoreDown = false;
    }
    expect(await total(cached, 'outage')).toBe(2);
    expect((await native(unknown, 'u', 'outage')).status).toBe(202); // back: the retry succeeds
  });
});
