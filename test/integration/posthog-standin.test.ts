import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { PostHog } from 'posthog-node';
import {
  DEFAULT_FLAGS_FIXTURE,
  EMPTY_FLAG_DEFINITIONS,
  type PosthogStandin,
  start,
} from '../support/posthog-standin';

/** Same shape as the recorded fixture: 100% for firstRouteCalled = /big/1, else 10%. */
const definitions = {
  flags: [
    {
      id: 1,
      key: 'usage-sampling',
      active: true,
      filters: {
        groups: [
          { properties: [{ key: 'firstRouteCalled', type: 'person', value: ['/big/1'], operator: 'exact' }], rollout_percentage: 100 },
          { properties: [], rollout_percentage: 0 },
        ],
      },
    },
  ],
  group_type_mapping: {},
  cohorts: {},
};

describe('PostHog stand-in', () => {
  let standin: PosthogStandin;
  const clients: PostHog[] = [];

  beforeAll(async () => {
    standin = await start({ port: 0 });
  });
  beforeEach(() => standin.reset());
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.shutdown()));
  });
  afterAll(() => standin?.stop());

  const client = (opts: ConstructorParameters<typeof PostHog>[1] = {}) => {
    const c = new PostHog('phc_test', { host: standin.url, flushAt: 1, flushInterval: 0, fetchRetryCount: 0, ...opts });
    clients.push(c);
    return c;
  };

  it('receives events from a real posthog-node client, gunzipped and deduplicated by uuid', async () => {
    const ph = client();
    const uuid = '0190f5b2-7a4e-7c3d-8b1a-2f3e4d5c6b7a';
    ph.capture({ distinctId: 'key_1', event: 'api_batch', properties: { calls: 10 }, uuid });
    ph.capture({ distinctId: 'key_1', event: 'api_batch', properties: { calls: 10 }, uuid }); // a retry
    ph.capture({ distinctId: 1234, event: 'api_batch', properties: { calls: 2 } } as never);
    await ph.shutdown();

    expect(standin.all).toHaveLength(3);
    expect(standin.unique).toHaveLength(2);
    expect(standin.unique.map((e) => e.properties.calls)).toEqual([10, 2]);
    expect(standin.unique[0]).toMatchObject({ event: 'api_batch', distinct_id: 'key_1', uuid, apiKey: 'phc_test', path: '/batch/' });
    expect(standin.unique[1].distinct_id).toBe(1234); // a number stays a number
    expect(standin.unique[1].uuid).toMatch(/^[0-9a-f-]{36}$/); // the SDK adds one
    expect(standin.batches.length).toBeGreaterThanOrEqual(1);
    expect(standin.batches.every((b) => b.gzipped && b.apiKey === 'phc_test' && typeof b.sentAt === 'string')).toBe(true);
    expect(standin.count('/batch/')).toBe(standin.batches.length);
  });

  it('detects gzip by its magic bytes, without a content-encoding header, and accepts plain JSON and single events', async () => {
    const body = { api_key: 'phc_x', batch: [{ event: 'a', distinct_id: 'd', uuid: 'u-1', properties: {} }] };
    const gz = await fetch(`${standin.url}/batch/`, { method: 'POST', body: gzipSync(JSON.stringify(body)) });
    expect(gz.status).toBe(200);
    expect(await gz.json()).toEqual({ status: 1 });
    const plain = await fetch(`${standin.url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(plain.status).toBe(200);
    const single = await fetch(`${standin.url}/capture/`, {
      method: 'POST',
      body: JSON.stringify({ api_key: 'phc_x', event: 'b', distinct_id: 'd', properties: { x: 1 } }),
    });
    expect(single.status).toBe(200);
    expect(standin.all.map((e) => e.event)).toEqual(['a', 'a', 'b']);
    expect(standin.unique.map((e) => e.event)).toEqual(['a', 'b']);
    expect(standin.batches.map((b) => b.gzipped)).toEqual([true, false, false]);
  });

  it('refuses a payload that is not JSON, or has no API key', async () => {
    expect((await fetch(`${standin.url}/batch/`, { method: 'POST', body: 'nope' })).status).toBe(400);
    const noKey = await fetch(`${standin.url}/batch/`, { method: 'POST', body: JSON.stringify({ batch: [{ event: 'a', properties: {} }] }) });
    expect(noKey.status).toBe(401);
    expect(standin.all).toHaveLength(0);
    expect(standin.rejected.map((r) => r.status)).toEqual([400, 401]);
  });

  it('accepts the recorded posthog-node 5.70 batch byte for byte', async () => {
    const gzFile = DEFAULT_FLAGS_FIXTURE.replace('flags-definitions.json', 'batch.body.gz');
    const res = await fetch(`${standin.url}/batch/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: readFileSync(gzFile),
    });
    expect(res.status).toBe(200);
    expect(standin.all).toHaveLength(26);
    expect(standin.all.some((e) => e.distinct_id === 1234)).toBe(true);
  });

  it('answers 503 while down, drops the connection in destroy mode, and counts both', async () => {
    standin.setDown(true);
    const ph = client();
    ph.capture({ distinctId: 'k', event: 'lost' });
    await ph.flush().catch(() => undefined);
    expect(standin.count('/batch/')).toBeGreaterThanOrEqual(1);
    expect(standin.all).toHaveLength(0);
    expect((await fetch(`${standin.url}/batch/`, { method: 'POST', body: '{}' })).status).toBe(503);

    standin.setDown('destroy');
    await expect(fetch(`${standin.url}/batch/`, { method: 'POST', body: '{}' })).rejects.toThrow();

    standin.setDown(false);
    const ok = await fetch(`${standin.url}/e/`, { method: 'POST', body: JSON.stringify({ token: 'phc_x', event: 'back', properties: {} }) });
    expect(ok.status).toBe(200);
    expect(standin.all.map((e) => e.event)).toEqual(['back']);
  });

  it('serves flag definitions for local evaluation with zero remote /flags calls', async () => {
    standin.setFlagDefinitions(definitions);
    const ph = client({ personalApiKey: 'phx_test', featureFlagsPollingInterval: null });
    expect(await ph.waitForLocalEvaluationReady(5000)).toBe(true);
    const local = { flagKeys: ['usage-sampling'], onlyEvaluateLocally: true };
    const on = await ph.evaluateFlags('key_1', { ...local, personProperties: { firstRouteCalled: '/big/1' } });
    const off = await ph.evaluateFlags('key_2', { ...local, personProperties: { firstRouteCalled: '/big/2' } });
    expect(on.isEnabled('usage-sampling')).toBe(true);
    expect(off.isEnabled('usage-sampling')).toBe(false);
    expect(standin.count('/flags/definitions')).toBeGreaterThanOrEqual(1);
    expect(standin.count('/flags/') + standin.count('/flags') + standin.count('/decide/')).toBe(0);
    const defs = standin.log.find((r) => r.path === '/flags/definitions')!;
    expect(defs.headers.authorization).toBe('Bearer phx_test');
    expect(defs.query).toContain('token=phc_test');
  });

  it('serves the recorded fixture by default, or empty definitions when it is absent', async () => {
    const res = await fetch(`${standin.url}/flags/definitions?token=phc_test&send_cohorts`);
    const body = await res.json();
    expect(body).toEqual(JSON.parse(readFileSync(DEFAULT_FLAGS_FIXTURE, 'utf8')));
    const missing = await start({ port: 0, flagDefinitionsFile: '/nonexistent/flags.json' });
    try {
      expect(await (await fetch(`${missing.url}/flags/definitions`)).json()).toEqual(EMPTY_FLAG_DEFINITIONS);
    } finally {
      await missing.stop();
    }
  });
});
