/**
 * Issue 4 end to end on the local stack (HTTP front → ingest → fauxqs → aggregator → dynalite, and
 * posthog-node to a PostHog stand-in serving the recorded flag definitions):
 * - 10,000 distinct ids sent in mixed ways: the raw events PostHog receives are exactly the ids PostHog's
 *   bucketing puts in the 10% sample, each once with sample_rate 0.1; no remote flag call; every event
 *   is queued exactly once (the aggregator is paused here: 10,000 distinct users cost dynalite minutes);
 * - with the whole pipeline running, exact counts and batch events are unchanged by sampling, and raw
 *   events never loop back into counting;
 * - an app pointing its whole posthog-node client at tally keeps working flags (local and remote);
 * - without PostHog, `npm start`'s wiring serves the local definitions file and writes sampled events to JSONL.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PostHog } from 'posthog-node';
import { localAwsClientConfig } from '../../local/emulators';
import { startLocalStack, type LocalSamplingOptions, type LocalStack } from '../../local/stack';
import { NoopSink } from '../../src/sink/print';
import { PostHogNodeSink } from '../../src/sink/posthog';
import type { QueueMessageBody } from '../../src/types';
import { DEFAULT_FLAGS_FIXTURE, startPosthogStandin, type PosthogStandin } from '../support/posthog-standin';

jest.setTimeout(180_000);

const KEY = 'tally_e2e_sampling_key_0123';
const LOCAL_FLAGS = resolve(__dirname, '../../local/flags-definitions.json');
const FLAG = 'usage-sampling';
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
const inSample = (id: string, pct = 10) => parseInt(createHash('sha1').update(`${FLAG}.${id}`).digest('hex').slice(0, 15), 16) / 0xfffffffffffffff <= pct / 100;

async function totalOf(stack: LocalStack, event: string): Promise<number> {
  const qs = new URLSearchParams({ event, granularity: 'day', from: String(Date.now() - 2 * 86_400_000), to: String(Date.now() + 86_400_000) });
  const r = await fetch(`${stack.url}/v1/usage?${qs}`, { headers: auth });
  return ((await r.json()) as { total: number }).total;
}

/** Every event in the stack's queue (read directly; the aggregator is paused). */
async function queuedEvents(stack: LocalStack): Promise<QueueMessageBody['events']> {
  const sqs = new SQSClient(localAwsClientConfig(stack.sqsEndpoint, 'us-east-1'));
  const out: QueueMessageBody['events'] = [];
  try {
    for (;;) {
      const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300 }));
      if (!r.Messages?.length) return out;
      for (const m of r.Messages) out.push(...(JSON.parse(m.Body!) as QueueMessageBody).events);
    }
  } finally {
    sqs.destroy();
  }
}

describe('with PostHog (the stand-in)', () => {
  let standin: PosthogStandin;
  let stack: LocalStack;
  const samplingTo = (host: string): LocalSamplingOptions => ({
    posthog: { host, projectKey: 'phc_project', personalKey: 'phx_personal' },
    personProperties: [['firstRouteCalled', 'route']],
    timeoutMs: 3000,
  });
  beforeAll(async () => {
    // The recorded definitions (test/fixtures; the same flag as local/flags-definitions.json).
    standin = await startPosthogStandin({ port: 0, flagDefinitionsFile: DEFAULT_FLAGS_FIXTURE });
    stack = await startLocalStack({
      port: 0,
      apiKey: KEY,
      sink: new NoopSink(),
      sampling: samplingTo(standin.url),
    });
    await stack.poller.stop();
  });
  afterAll(async () => {
    await stack?.stop();
    await standin?.stop();
  });

  const remoteFlagCalls = () => standin.count('/flags/') + standin.count('/flags') + standin.count('/decide/') + standin.count('/decide');

  test('10,000 distinct ids: raw events are exactly PostHog’s 10% sample, once each with sample_rate 0.1; every event queued once; no remote flag call', async () => {
    const ids: string[] = [];
    // 6,000 in native batches of 100.
    const native = Array.from({ length: 60 }, async (_, b) => {
      const batch = Array.from({ length: 100 }, (_, i) => {
        const id = `user-${b * 100 + i}`;
        ids.push(id);
        return { distinctId: id, event: 'big_route', properties: { route: '/v1/things' } };
      });
      const r = await fetch(`${stack.url}/v1/usage`, { method: 'POST', headers: auth, body: JSON.stringify({ batch }) });
      expect(r.status).toBe(202);
    });
    // 3,000 through an unmodified posthog-node pointed at tally (gzip /batch/), plus $identify (never sampled).
    const ph = new PostHog(KEY, { host: stack.url, flushAt: 500, flushInterval: 0, fetchRetryCount: 3, fetchRetryDelay: 100 });
    for (let i = 6000; i < 9000; i++) {
      ids.push(`user-${i}`);
      ph.capture({ distinctId: `user-${i}`, event: 'big_route', properties: { route: '/v1/things' } });
    }
    for (let i = 0; i < 20; i++) ph.identify({ distinctId: `user-${i}`, properties: { plan: 'pro' } });
    // 1,000 as gzip bodies to /e/ without content-encoding, numeric distinct ids.
    const gz = Array.from({ length: 10 }, async (_, b) => {
      const batch = Array.from({ length: 100 }, (_, i) => {
        const n = 9000 + b * 100 + i;
        ids.push(String(n));
        return { event: 'big_route', distinct_id: n, properties: { route: '/v1/things' } };
      });
      const r = await fetch(`${stack.url}/e/`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: gzipSync(JSON.stringify({ api_key: KEY, batch })) });
      expect(r.status).toBe(200);
    });
    await Promise.all([...native, ph.shutdown(), ...gz]);
    expect(new Set(ids).size).toBe(10_000);

    // Raw capture is awaited by ingest before it answers: every sampled event is already at PostHog.
    const raw = standin.all.filter((e) => e.event === 'big_route');
    const expected = new Set(ids.filter((id) => inSample(id)));
    expect(expected.size).toBeGreaterThan(900);
    expect(new Set(raw.map((e) => String(e.distinct_id)))).toEqual(expected);
    expect(raw).toHaveLength(expected.size); // each once
    expect(new Set(raw.map((e) => e.properties.sample_rate))).toEqual(new Set([0.1]));
    expect(standin.all.filter((e) => e.event !== 'big_route')).toHaveLength(0); // no $feature_flag_called, no $identify from ingest
    expect(remoteFlagCalls()).toBe(0);

    // Every event, sampled or not, is queued exactly once: what the aggregator counts exactly.
    const queued = await queuedEvents(stack);
    expect(queued.filter((e) => e.event === 'big_route').map((e) => e.distinct_id).sort()).toEqual([...ids].sort());
    expect(queued.filter((e) => e.event === '$identify')).toHaveLength(20);
  });

  test('the whole pipeline: exact counts and batch events unchanged by sampling; raw events never counted', async () => {
    const full = await startLocalStack({
      port: 0,
      apiKey: KEY,
      sink: new PostHogNodeSink({ apiKey: 'phc_project', host: standin.url, requestTimeoutMs: 2000, fetchRetryCount: 0 }),
      batchWindowMs: 200,
      windowSeconds: 10,
      graceSeconds: 4,
      staleSeconds: 4,
      rollupIntervalMs: 500,
      sampling: samplingTo(standin.url),
    });
    try {
      // 5,000 calls from 100 accounts; accounts 0–4 first called /big/1 (always sampled).
      const account = (i: number) => `acct-${i % 100}`;
      const route = (i: number) => (i % 100 < 5 ? '/big/1' : '/v1/things');
      await Promise.all(
        Array.from({ length: 25 }, async (_, b) => {
          const batch = Array.from({ length: 200 }, (_, j) => ({ distinctId: account(b * 200 + j), event: 'api_call', properties: { route: route(b * 200 + j) } }));
          const r = await fetch(`${full.url}/v1/usage`, { method: 'POST', headers: auth, body: JSON.stringify({ batch }) });
          expect(r.status).toBe(202);
        }),
      );
      const sampledAccounts = new Set(Array.from({ length: 100 }, (_, i) => `acct-${i}`).filter((a) => Number(a.slice(5)) < 5 || inSample(a)));
      const raw = standin.all.filter((e) => e.event === 'api_call');
      expect(raw).toHaveLength(50 * sampledAccounts.size);
      expect(new Set(raw.map((e) => e.distinct_id))).toEqual(sampledAccounts);
      for (const e of raw) expect(e.properties.sample_rate).toBe(Number(String(e.distinct_id).slice(5)) < 5 ? 1 : 0.1);

      await full.settle(60_000);
      expect(await totalOf(full, 'api_call')).toBe(5000);
      await full.rolledUp(60_000, { delivered: true });
      const sum = standin.unique.filter((e) => e.event === 'api_call_batch').reduce((a, e) => a + Number(e.properties.calls), 0);
      expect(sum).toBe(5000);
      expect(await totalOf(full, 'api_call')).toBe(5000);
      expect(remoteFlagCalls()).toBe(0);
    } finally {
      await full.stop();
    }
  });

  test('an app pointing its whole PostHog client at tally keeps working flags', async () => {
    // Local evaluation: definitions through tally's /flags/definitions, the tally key swapped for the project key.
    const local = new PostHog(KEY, { host: stack.url, personalApiKey: 'phx_app_personal', strictLocalEvaluation: true, sendFeatureFlagEvent: false });
    try {
      expect(await local.waitForLocalEvaluationReady(5000)).toBe(true);
      const r = await local.getFeatureFlagResult(FLAG, 'someone', { personProperties: { firstRouteCalled: '/big/1' }, sendFeatureFlagEvents: false });
      expect(r).toMatchObject({ enabled: true, payload: { sampleRate: 0.1 } });
    } finally {
      await local.shutdown();
    }
    const defsRequest = standin.log.filter((l) => l.path === '/flags/definitions' && l.headers.authorization === 'Bearer phx_app_personal');
    expect(defsRequest.length).toBeGreaterThan(0);
    expect(defsRequest[0]!.query).toBe('token=phc_project&send_cohorts');

    // Remote evaluation: POST /flags/?v=2 through tally.
    const before = standin.count('/flags/');
    const remote = new PostHog(KEY, { host: stack.url, sendFeatureFlagEvent: false, fetchRetryCount: 0 });
    try {
      const flags = await remote.evaluateFlags('someone', { flagKeys: [FLAG] });
      // The stand-in evaluates the definitions as PostHog would; without the person property the flag's
      // conditions depend on, it cannot decide, and the answer carries no value for it.
      expect(flags.getFlag(FLAG)).toBeUndefined();
    } finally {
      await remote.shutdown();
    }
    expect(standin.count('/flags/')).toBe(before + 1);

    // A client with a key tally does not know gets 401, and nothing reaches PostHog.
    const n = standin.log.length;
    const bad = await fetch(`${stack.url}/flags/definitions?token=phc_not_tally&send_cohorts`);
    expect(bad.status).toBe(401);
    expect(standin.log.length).toBe(n);
  });
});

describe('without PostHog: the local flag file and JSONL (npm start)', () => {
  let stack: LocalStack;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-sampling-'));
    stack = await startLocalStack({
      port: 0,
      apiKey: KEY,
      sink: new NoopSink(),
      batchWindowMs: 100,
      sampling: {
        flagsFile: LOCAL_FLAGS,
        capturedFile: join(dir, 'posthog-sampled.jsonl'),
        personProperties: [['firstRouteCalled', 'route']],
        // 129 sampled events go out in two requests; on a loaded 2-core CI machine the second one has
        // missed npm start's 1 s capture bound (the request is still 202: sampling is best effort).
        timeoutMs: 5000,
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('sampled events are written to the JSONL with their rate, never counted twice', async () => {
    const batch = Array.from({ length: 400 }, (_, i) => ({ distinctId: `local-${i}`, event: 'big_route', properties: { route: i < 100 ? '/big/1' : '/x' } }));
    const r = await fetch(`${stack.url}/v1/usage`, { method: 'POST', headers: auth, body: JSON.stringify({ batch }) });
    expect(r.status).toBe(202);
    const lines = readFileSync(join(dir, 'posthog-sampled.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { distinct_id: string; properties: { sample_rate: number } });
    const want = batch.filter((e, i) => i < 100 || inSample(e.distinctId)).map((e) => e.distinctId);
    expect(lines.map((l) => l.distinct_id).sort()).toEqual(want.sort());
    for (const l of lines) expect(l.properties.sample_rate).toBe(Number(l.distinct_id.split('-')[1]) < 100 ? 1 : 0.1);
    expect(stack.localPosthog!.events).toHaveLength(want.length);
    await stack.settle(60_000);
    expect(await totalOf(stack, 'big_route')).toBe(400);
  });

  test('the flag routes answer from the local file', async () => {
    const defs = await fetch(`${stack.url}/flags/definitions?token=${KEY}&send_cohorts`, { headers: { authorization: 'Bearer phx_anything' } });
    expect(defs.status).toBe(200);
    expect(((await defs.json()) as { flags: Array<{ key: string }> }).flags[0]!.key).toBe(FLAG);
    const flags = await fetch(`${stack.url}/flags/?v=2`, { method: 'POST', headers: auth, body: JSON.stringify({ token: KEY, distinct_id: 'x', person_properties: { firstRouteCalled: '/big/1' } }) });
    expect(flags.status).toBe(200);
    const body = (await flags.json()) as { flags: Record<string, { enabled: boolean }>; featureFlags: Record<string, unknown> };
    expect(body.flags[FLAG]!.enabled).toBe(true);
    expect(body.featureFlags[FLAG]).toBe(true);
    // posthog-node pointed at tally, remote evaluation, offline.
    const ph = new PostHog(KEY, { host: stack.url, sendFeatureFlagEvent: false, fetchRetryCount: 0 });
    try {
      const f = await ph.evaluateFlags('x', { personProperties: { firstRouteCalled: '/big/1' }, flagKeys: [FLAG] });
      expect(f.isEnabled(FLAG)).toBe(true);
      expect(f.getFlagPayload(FLAG)).toEqual({ sampleRate: 0.1 });
    } finally {
      await ph.shutdown();
    }
  });
});
