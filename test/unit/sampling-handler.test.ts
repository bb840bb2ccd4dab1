/**
 * The ingest handler with sampling: raw capture only after the queue took the events, bounded, never
 * changing the answer; failures counted; flag routes dispatched before ingest.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { createIngestHandler, INGEST_ANSWER_RESERVE_MS } from '../../functions/ingest/handler';
import { QueueUnavailableError } from '../../src/errors';
import { METRICS, SAMPLING_METRICS } from '../../src/observability';
import type { EventQueue } from '../../src/queue/types';
import { CaptureError, type RawCapture, type SampledEvent, type Sampler } from '../../src/sampling';
import type { QueuedEvent } from '../../src/types';

import { apiEvent as makeEvent } from '../support/api-event';
import { memoryAuth } from '../support/projects';

const KEY = 'tally_key_0123456789';
const OWN_KEY = 'tally_own_key_0123456789';

function apiEvent(method: string, path: string, body?: string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }): APIGatewayProxyEventV2 {
  return makeEvent({ method, path, body, headers });
}

/** Records every step in one timeline. */
function harness(opts: { queueFails?: boolean; sampleEvery?: number; capture?: (events: readonly SampledEvent[], timeoutMs?: number) => Promise<void>; remainingMs?: number } = {}) {
  const timeline: string[] = [];
  const metrics: Record<string, number> = {};
  const fakeMetrics = {
    addMetric: (name: string, _unit: unknown, value: number) => void (metrics[name] = (metrics[name] ?? 0) + value),
    singleMetric: () => ({ addDimension: () => undefined, addMetric: (name: string, _u: unknown, v: number) => void (metrics[name] = (metrics[name] ?? 0) + v) }),
    publishStoredMetrics: () => undefined,
  } as unknown as Metrics;
  const queue: EventQueue = {
    send: async (events) => {
      timeline.push(`queue ${events.length}`);
      if (opts.queueFails) throw new QueueUnavailableError();
      return { messages: 1, calls: 1 };
    },
  };
  const sampler: Sampler = {
    sample: async (events: readonly QueuedEvent[]) => {
      timeline.push(`sample ${events.length}`);
      const every = opts.sampleEvery ?? 0;
      const sampled = every ? events.filter((_, i) => i % every === 0).map((event) => ({ event, rate: 1 / every })) : [];
      return { sampled, evaluated: events.length, unavailable: 0 };
    },
    close: async () => undefined,
  };
  const captured: Array<{ events: readonly SampledEvent[]; timeoutMs?: number; destination?: { key: string; host: string } }> = [];
  const capture: RawCapture = {
    capture: async (events, timeoutMs, destination) => {
      timeline.push(`capture ${events.length}`);
      captured.push({ events, timeoutMs, destination });
      await opts.capture?.(events, timeoutMs);
    },
  };
  const warnings: unknown[] = [];
  const logger = { warn: (...a: unknown[]) => warnings.push(a), error: (...a: unknown[]) => warnings.push(a), info: () => undefined } as never;
  const projects = memoryAuth([KEY]);
  // A second project with its own PostHog: its sampled events go there.
  projects.keyStore.projects.set('own', { id: 'own', ip: 'keep', origins: [], tokenVersion: 1, createdAt: 0, updatedAt: 0, posthog: { key: 'phc_ownprojectkey', host: 'https://eu.i.posthog.com' } });
  projects.keyStore.addKey(OWN_KEY, { project: 'own' });
  const handler = createIngestHandler({ queue, ...projects, metrics: fakeMetrics, logger, sampling: { sampler, capture, timeoutMs: 300 } });
  const ctx = (opts.remainingMs === undefined ? {} : { getRemainingTimeInMillis: () => opts.remainingMs! }) as Context;
  return { handler, timeline, metrics, captured, warnings, ctx };
}

const batch = (n: number) => JSON.stringify({ batch: Array.from({ length: n }, (_, i) => ({ distinctId: `u${i}`, event: 'big_route' })) });

describe('ingest handler with sampling', () => {
  it('captures the sampled events after the queue took them, then answers', async () => {
    const h = harness({ sampleEvery: 10 });
    const r = await h.handler(apiEvent('POST', '/v1/usage', batch(100)), h.ctx);
    expect(r).toMatchObject({ statusCode: 202, body: '{"accepted":100}' });
    expect(h.timeline).toEqual(['queue 100', 'sample 100', 'capture 10']);
    expect(h.captured[0]!.timeoutMs).toBe(300);
    expect(h.metrics[SAMPLING_METRICS.EventsSampled]).toBe(10);
    expect(h.metrics[SAMPLING_METRICS.SampleCaptureFailures]).toBeUndefined();
  });

  it('a project with its own PostHog gets its sampled events there; others the deployment’s', async () => {
    const h = harness({ sampleEvery: 1 });
    await h.handler(apiEvent('POST', '/v1/usage', batch(2), { authorization: `Bearer ${OWN_KEY}` }), h.ctx);
    await h.handler(apiEvent('POST', '/v1/usage', batch(2)), h.ctx);
    expect(h.captured.map((c) => c.destination)).toEqual([{ key: 'phc_ownprojectkey', host: 'https://eu.i.posthog.com' }, undefined]);
    expect(h.captured[0]!.events.every((e) => e.event.project === 'own')).toBe(true);
  });

  it('nothing sampled: no capture, no wait', async () => {
    const h = harness({ sampleEvery: 0 });
    const r = await h.handler(apiEvent('POST', '/v1/usage', batch(5)), h.ctx);
    expect(r.statusCode).toBe(202);
    expect(h.timeline).toEqual(['queue 5', 'sample 5']);
  });

  it('a rejected request or a refused queue samples nothing', async () => {
    const h = harness({ sampleEvery: 1, queueFails: true });
    expect((await h.handler(apiEvent('POST', '/v1/usage', batch(3)), h.ctx)).statusCode).toBe(503);
    expect((await h.handler(apiEvent('POST', '/v1/usage', '{bad'), h.ctx)).statusCode).toBe(400);
    expect((await h.handler(apiEvent('POST', '/v1/usage', batch(1), {}), h.ctx)).statusCode).toBe(401);
    expect(h.timeline).toEqual(['queue 3']);
    expect(h.metrics[METRICS.QueueSendFailures]).toBe(1);
  });

  it('a failed capture is counted and logged; the answer is unchanged', async () => {
    const h = harness({ sampleEvery: 2, capture: async (events) => Promise.reject(new CaptureError(events.length - 1, events.length, 'PostHog 503')) });
    const r = await h.handler(apiEvent('POST', '/batch/', JSON.stringify({ api_key: KEY, batch: Array.from({ length: 10 }, (_, i) => ({ event: 'e', distinct_id: `d${i}` })) })), h.ctx);
    expect(r).toMatchObject({ statusCode: 200, body: '{"status":1}' });
    expect(h.metrics[SAMPLING_METRICS.SampleCaptureFailures]).toBe(4);
    expect(h.metrics[SAMPLING_METRICS.EventsSampled]).toBe(1);
    expect(h.warnings).toHaveLength(1);
  });

  it('any sampling error is contained', async () => {
    const h = harness({ sampleEvery: 1, capture: async () => Promise.reject(new Error('boom')) });
    const r = await h.handler(apiEvent('POST', '/v1/usage', batch(3)), h.ctx);
    expect(r.statusCode).toBe(202);
    expect(h.metrics[SAMPLING_METRICS.SampleCaptureFailures]).toBe(3);
  });

  it('the capture never runs past the invocation’s deadline (remaining time minus the answer reserve)', async () => {
    const h = harness({ sampleEvery: 1, remainingMs: INGEST_ANSWER_RESERVE_MS + 150 });
    await h.handler(apiEvent('POST', '/v1/usage', batch(1)), h.ctx);
    expect(h.captured[0]!.timeoutMs).toBeGreaterThan(100);
    expect(h.captured[0]!.timeoutMs).toBeLessThanOrEqual(150);
  });

  it('$ events are handed to the sampler with the rest (it skips them itself)', async () => {
    const h = harness({ sampleEvery: 1 });
    await h.handler(apiEvent('POST', '/batch/', JSON.stringify({ api_key: KEY, batch: [{ event: '$identify', distinct_id: 'a' }] })), h.ctx);
    expect(h.timeline[1]).toBe('sample 1');
  });
});

describe('flag routes in the handler', () => {
  it('without PostHog: 503 flags_unavailable, counted as a flag-route failure (not a queue failure), nothing queued', async () => {
    const h = harness();
    const r = await h.handler(apiEvent('POST', '/flags/', JSON.stringify({ token: KEY, distinct_id: 'u' })), h.ctx);
    expect(r.statusCode).toBe(503);
    expect(JSON.parse(r.body!)).toMatchObject({ error: 'flags_unavailable' });
    expect(h.timeline).toEqual([]);
    expect(h.metrics[SAMPLING_METRICS.FlagProxyFailures]).toBe(1);
    expect(h.metrics[METRICS.QueueSendFailures]).toBeUndefined();
  });

  it('with PostHog: forwarded', async () => {
    const seen: string[] = [];
    const handler = createIngestHandler({
      queue: { send: async () => ({ messages: 0, calls: 0 }) },
      ...memoryAuth([KEY]),
      flags: {
        host: 'https://ph.example',
        projectKey: 'phc_real',
        timeoutMs: 500,
        fetch: (async (url: string) => {
          seen.push(url);
          return new Response('{"featureFlags":{}}', { status: 200 });
        }) as unknown as typeof fetch,
      },
    });
    const r = await handler(apiEvent('POST', '/decide/', JSON.stringify({ token: KEY, distinct_id: 'u' })), {} as Context);
    expect(r).toMatchObject({ statusCode: 200, body: '{"featureFlags":{}}' });
    expect(seen).toEqual(['https://ph.example/decide/']);
  });
});
