/**
 * Sampling over real HTTP with real posthog-node, against the PostHog stand-in serving the recorded
 * definitions (flag `usage-sampling`: 100% where firstRouteCalled is /big/1, else 10%):
 * - the sampled set is exactly PostHog's bucketing and exactly posthog-node's own local evaluation,
 *   for the fixture and for any rollout, with and without person properties;
 * - zero remote flag calls, zero `$feature_flag_called` events;
 * - raw capture: each event once with `sample_rate`; a dead, failing or hanging PostHog is bounded;
 * - cold start without PostHog samples nothing and waits at most the bound; definitions refresh.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { PostHog } from 'posthog-node';
import { PostHogRawCapture } from '../../src/sampling/capture';
import { PostHogSampler, type PostHogSamplerOptions } from '../../src/sampling/posthog';
import { CaptureError } from '../../src/sampling/types';
import type { QueuedEvent } from '../../src/types';
import { DEFAULT_FLAGS_FIXTURE, startPosthogStandin, type PosthogStandin } from '../support/posthog-standin';

jest.setTimeout(60_000);

// The recorded posthog-node definitions (test/fixtures); local/flags-definitions.json holds the same flag.
const FIXTURE_FILE = DEFAULT_FLAGS_FIXTURE;
const FIXTURE = JSON.parse(readFileSync(FIXTURE_FILE, 'utf8')) as { flags: Array<Record<string, any>> };
const FLAG = 'usage-sampling';
let standin: PosthogStandin;
const open: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  standin = await startPosthogStandin({ port: 0, flagDefinitions: FIXTURE });
});
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
  standin.reset();
});
afterAll(async () => {
  await standin.stop();
});

const bucket = (id: string) => parseInt(createHash('sha1').update(`${FLAG}.${id}`).digest('hex').slice(0, 15), 16) / 0xfffffffffffffff;
const ev = (id: string, properties: Record<string, unknown> = {}, event = 'big_route'): QueuedEvent => ({
  uuid: randomUUID(),
  event,
  distinct_id: id,
  properties,
  timestamp: new Date().toISOString(),
  ip: '203.0.113.9',
  received_at: Date.now(),
});
const ids = (n: number, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function sampler(o: Partial<PostHogSamplerOptions> = {}, host = standin.url): PostHogSampler {
  const s = new PostHogSampler({
    projectKey: 'phc_project',
    personalKey: 'phx_personal',
    host,
    flagKey: FLAG,
    personProperties: [['firstRouteCalled', 'route']],
    requestTimeoutMs: 1000,
    readyTimeoutMs: 2000,
    ...o,
  });
  open.push(s);
  return s;
}

/** posthog-node's own local evaluation, the reference. */
async function reference(host = standin.url): Promise<PostHog> {
  const ph = new PostHog('phc_project', { host, personalApiKey: 'phx_personal', strictLocalEvaluation: true, sendFeatureFlagEvent: false, flushAt: 1, flushInterval: 0 });
  open.push({ close: () => ph.shutdown() });
  expect(await ph.waitForLocalEvaluationReady(5000)).toBe(true);
  return ph;
}
const refEnabled = async (ph: PostHog, id: string, personProperties: Record<string, string> = {}) =>
  (await ph.getFeatureFlagResult(FLAG, id, { personProperties, onlyEvaluateLocally: true, sendFeatureFlagEvents: false }))?.enabled === true;

const remoteFlagCalls = () => standin.count('/flags/') + standin.count('/flags') + standin.count('/decide/') + standin.count('/decide');

describe('which events are sampled', () => {
  it('10,000 distinct ids against the 10% flag: exactly PostHog’s bucketing and posthog-node’s answer, each at rate 0.1, no remote flag call', async () => {
    const s = sampler();
    const ph = await reference();
    const events = ids(10_000).map((id) => ev(id, { route: '/v1/things' }));
    const out = await s.sample(events);
    expect(out).toMatchObject({ evaluated: 10_000, unavailable: 0 });
    const got = new Set(out.sampled.map((x) => x.event.distinct_id));
    const byFormula = new Set(ids(10_000).filter((id) => bucket(id) <= 0.1));
    expect(got).toEqual(byFormula);
    const byPosthogNode = new Set<string>();
    for (const id of ids(10_000)) if (await refEnabled(ph, id, { firstRouteCalled: '/v1/things' })) byPosthogNode.add(id);
    expect(got).toEqual(byPosthogNode);
    expect(got.size).toBeGreaterThan(900);
    expect(got.size).toBeLessThan(1100);
    expect(new Set(out.sampled.map((x) => x.rate))).toEqual(new Set([0.1]));
    expect(s.mode).toBe('compiled');
    expect(remoteFlagCalls()).toBe(0);
    expect(s.blockedRequests).toBe(0);
    expect(standin.all).toHaveLength(0); // no $feature_flag_called, nothing captured by the sampler
  });

  it('person properties from $set_once, $set and the mapping: /big/1 callers are always sampled at rate 1', async () => {
    const s = sampler();
    const ph = await reference();
    const events = [
      ...ids(1000, 'a').map((id) => ev(id, { $set_once: { firstRouteCalled: '/big/1' } })),
      ...ids(1000, 'b').map((id) => ev(id, { route: '/big/1' })),
      ...ids(1000, 'c').map((id) => ev(id, { $set: { firstRouteCalled: '/big/2' } })),
      ...ids(1000, 'd').map((id) => ev(id)),
    ];
    const out = await s.sample(events);
    const rateOf = new Map(out.sampled.map((x) => [x.event.distinct_id, x.rate]));
    for (const e of events) {
      const pp: Record<string, string> = {};
      const fr = (e.properties.$set_once as any)?.firstRouteCalled ?? (e.properties.$set as any)?.firstRouteCalled;
      if (fr) pp.firstRouteCalled = fr;
      if (e.properties.route) pp.firstRouteCalled = e.properties.route as string;
      expect(rateOf.has(e.distinct_id)).toBe(await refEnabled(ph, e.distinct_id, pp));
      if (pp.firstRouteCalled === '/big/1') expect(rateOf.get(e.distinct_id)).toBe(1);
      else if (rateOf.has(e.distinct_id)) expect(rateOf.get(e.distinct_id)).toBe(0.1);
    }
    expect(out.sampled.filter((x) => x.rate === 1)).toHaveLength(2000);
    expect(remoteFlagCalls()).toBe(0);
  });

  it('any rollout: the sampled set follows PostHog’s bucketing exactly', async () => {
    for (const pct of [0, 1, 12.5, 50, 99.9, 100]) {
      standin.setFlagDefinitions({ flags: [{ ...FIXTURE.flags[0], filters: { groups: [{ properties: [], rollout_percentage: pct }] } }], group_type_mapping: {}, cohorts: {} });
      const s = sampler();
      const ph = await reference();
      const out = await s.sample(ids(3000).map((id) => ev(`${pct}-${id}`)));
      const got = new Set(out.sampled.map((x) => x.event.distinct_id));
      const want = ids(3000).map((id) => `${pct}-${id}`).filter((id) => bucket(id) <= pct / 100);
      expect(got).toEqual(new Set(want));
      for (const id of ids(300).map((i) => `${pct}-${i}`)) expect(got.has(id)).toBe(await refEnabled(ph, id));
      if (out.sampled.length) expect(new Set(out.sampled.map((x) => x.rate))).toEqual(new Set([pct / 100]));
    }
    expect(remoteFlagCalls()).toBe(0);
  });

  it('flags tally does not compile are evaluated by posthog-node locally, still without remote calls', async () => {
    // A multivariate flag: sampled when any variant is assigned; rate from the payload.
    standin.setFlagDefinitions({
      flags: [
        {
          ...FIXTURE.flags[0],
          filters: {
            groups: [{ properties: [], rollout_percentage: 30 }],
            multivariate: { variants: [{ key: 'a', rollout_percentage: 50 }, { key: 'b', rollout_percentage: 50 }] },
            payloads: { a: '{"sampleRate":0.3}', b: '{"sampleRate":0.3}' },
          },
        },
      ],
      group_type_mapping: {},
      cohorts: {},
    });
    const s = sampler();
    const ph = await reference();
    const out = await s.sample(ids(1000).map((id) => ev(id)));
    expect(s.mode).toBe('delegated');
    const got = new Set(out.sampled.map((x) => x.event.distinct_id));
    for (const id of ids(1000)) expect(got.has(id)).toBe(await refEnabled(ph, id));
    expect(got).toEqual(new Set(ids(1000).filter((id) => bucket(id) <= 0.3)));
    // payloads are per variant; the "true" payload is absent, so the single rollout gives the rate.
    expect(new Set(out.sampled.map((x) => x.rate))).toEqual(new Set([0.3]));
    expect(remoteFlagCalls()).toBe(0);
    expect(s.blockedRequests).toBe(0);
  });

  it('only counted events are candidates; a missing or disabled flag samples nothing', async () => {
    const s = sampler();
    const out = await s.sample([ev('user-1', {}, '$identify'), ev('user-2', {}, '$pageview')]);
    expect(out).toEqual({ sampled: [], evaluated: 0, unavailable: 0 });
    standin.setFlagDefinitions({ flags: [{ ...FIXTURE.flags[0], active: false }], group_type_mapping: {}, cohorts: {} });
    const off = sampler();
    expect((await off.sample(ids(500).map((id) => ev(id)))).sampled).toHaveLength(0);
    expect(off.mode).toBe('inactive');
    standin.setFlagDefinitions({ flags: [], group_type_mapping: {}, cohorts: {} });
    const none = sampler();
    expect((await none.sample(ids(500).map((id) => ev(id)))).sampled).toHaveLength(0);
    expect(none.mode).toBe('missing');
  });

  it('definitions are refreshed in the background: a new rollout applies without a restart', async () => {
    const s = sampler({ pollIntervalMs: 200 });
    const before = await s.sample(ids(2000).map((id) => ev(id)));
    expect(before.sampled.length).toBeLessThan(300);
    standin.setFlagDefinitions({ flags: [{ ...FIXTURE.flags[0], filters: { groups: [{ properties: [], rollout_percentage: 50 }] } }], group_type_mapping: {}, cohorts: {} });
    const deadline = Date.now() + 5000;
    let after = before;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await s.sample(ids(2000).map((id) => ev(id)));
      if (after.sampled.length > 700) break;
    }
    expect(new Set(after.sampled.map((x) => x.event.distinct_id))).toEqual(new Set(ids(2000).filter((id) => bucket(id) <= 0.5)));
    expect(new Set(after.sampled.map((x) => x.rate))).toEqual(new Set([0.5]));
    expect(remoteFlagCalls()).toBe(0);
  });
});

/** A TCP server that accepts connections and never answers. */
async function blackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('cold start without PostHog', () => {
  it.each(['503', 'destroy'] as const)('PostHog %s: the first request waits at most the bound, samples nothing, counts it; later requests do not wait', async (mode) => {
    standin.setDown(mode);
    const s = sampler({ readyTimeoutMs: 300, requestTimeoutMs: 300, pollIntervalMs: 60_000 });
    const t0 = performance.now();
    const out = await s.sample(ids(100).map((id) => ev(id)));
    expect(performance.now() - t0).toBeLessThan(800);
    expect(out).toEqual({ sampled: [], evaluated: 0, unavailable: 100 });
    const t1 = performance.now();
    await s.sample(ids(100).map((id) => ev(id)));
    expect(performance.now() - t1).toBeLessThan(200); // well under the 300 ms bound: no second wait
    expect(s.state).toBe('unavailable');
    expect(remoteFlagCalls()).toBe(0);
  });

  it('a PostHog that never answers: bounded the same way', async () => {
    const hole = await blackHole();
    open.push(hole);
    const s = sampler({ readyTimeoutMs: 300, requestTimeoutMs: 300 }, hole.url);
    const t0 = performance.now();
    const out = await s.sample(ids(10).map((id) => ev(id)));
    expect(performance.now() - t0).toBeLessThan(800);
    expect(out.unavailable).toBe(10);
  });

  it('once PostHog is back, the background poll loads the definitions and sampling starts', async () => {
    standin.setDown('503');
    const s = sampler({ readyTimeoutMs: 200, requestTimeoutMs: 300, pollIntervalMs: 200 });
    expect((await s.sample(ids(10).map((id) => ev(id)))).unavailable).toBe(10);
    standin.setDown(false);
    await s.whenLoaded();
    const out = await s.sample(ids(2000).map((id) => ev(id)));
    expect(out.unavailable).toBe(0);
    expect(out.sampled.length).toBeGreaterThan(100);
    expect(remoteFlagCalls()).toBe(0);
  });
});

describe('raw capture', () => {
  it('each sampled event once, as sent, with sample_rate and the client address for GeoIP', async () => {
    const s = sampler();
    const events = ids(2000).map((id) => ev(id, { route: id.endsWith('7') ? '/big/1' : '/x', $lib: 'posthog-node' }));
    const out = await s.sample(events);
    const cap = new PostHogRawCapture({ projectKey: 'phc_project', host: standin.url, timeoutMs: 2000 });
    await cap.capture(out.sampled);
    expect(standin.all).toHaveLength(out.sampled.length);
    expect(standin.unique).toHaveLength(out.sampled.length);
    const byUuid = new Map(standin.unique.map((e) => [e.uuid, e]));
    for (const x of out.sampled) {
      const got = byUuid.get(x.event.uuid)!;
      expect(got.event).toBe('big_route');
      expect(got.distinct_id).toBe(x.event.distinct_id);
      expect(got.apiKey).toBe('phc_project');
      expect(got.properties).toMatchObject({ sample_rate: x.rate, route: x.event.properties.route, $ip: '203.0.113.9' });
      expect(got.properties.$geoip_disable).toBeUndefined();
      expect(new Date(got.timestamp!).toISOString()).toBe(x.event.timestamp);
    }
    expect(remoteFlagCalls()).toBe(0);
  });

  it('PostHog answering 503 or dropping the connection: rejects with CaptureError, quickly', async () => {
    const cap = new PostHogRawCapture({ projectKey: 'phc_project', host: standin.url, timeoutMs: 1000 });
    const sampled = ids(5).map((id) => ({ event: ev(id), rate: 0.1 }));
    const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (const mode of ['503', 'destroy'] as const) {
        standin.setDown(mode);
        const t0 = performance.now();
        const err = await cap.capture(sampled).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CaptureError);
        expect((err as CaptureError).failed).toBe(5);
        expect(performance.now() - t0).toBeLessThan(1100);
      }
    } finally {
      quiet.mockRestore();
    }
  });

  it('a PostHog that never answers costs at most the bound', async () => {
    const hole = await blackHole();
    open.push(hole);
    const cap = new PostHogRawCapture({ projectKey: 'phc_project', host: hole.url, timeoutMs: 400 });
    const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const t0 = performance.now();
      const err = await cap.capture(ids(3).map((id) => ({ event: ev(id), rate: 0.1 }))).catch((e: unknown) => e);
      const took = performance.now() - t0;
      expect(err).toBeInstanceOf(CaptureError);
      expect((err as Error).message).toMatch(/within 400 ms|abort|timeout|Network/i);
      expect(took).toBeGreaterThanOrEqual(350);
      expect(took).toBeLessThan(1000); // the bound plus scheduling slack; posthog-node's defaults would take ~49 s
      await new Promise((r) => setTimeout(r, 100)); // posthog-node logs the aborted background flush just after
    } finally {
      quiet.mockRestore();
    }
  });
});
