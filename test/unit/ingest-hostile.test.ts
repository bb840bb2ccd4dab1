/**
 * The ingest handler against the adversarial run of issue 11 (findings 11–19), with a queue that records
 * what it was given: each bad input gets a 4xx naming the problem and queues nothing; the odd but valid
 * ones are accepted as sent. (The same content through real SQS wire protocols: test/integration/sqs-queue.test.ts.)
 */
import * as zlib from 'node:zlib';
import type { Context } from 'aws-lambda';
import { createIngestHandler } from '../../functions/ingest/handler';
import { MAX_JSON_DEPTH } from '../../src/ingest/decode';
import { MAX_BATCH_EVENTS, MAX_POSTHOG_BATCH_EVENTS } from '../../src/ingest/schema';
import { METRICS } from '../../src/observability';
import { packMessages } from '../../src/queue/pack';
import type { EventQueue } from '../../src/queue/types';
import type { QueuedEvent } from '../../src/types';
import { apiEvent } from '../support/api-event';
import { memoryAuth } from '../support/projects';

const KEY = 'tally_hostile_key_123';
const ctx = {} as Context;

function harness(limits?: Parameters<typeof createIngestHandler>[0]['limits']) {
  const queued: QueuedEvent[][] = [];
  const counted: Record<string, number> = {};
  const queue: EventQueue = {
    send: async (events) => {
      queued.push(events);
      return { messages: 1, calls: 1 };
    },
  };
  const metrics = {
    addMetric: (name: string, _u: unknown, v: number) => void (counted[name] = (counted[name] ?? 0) + v),
    singleMetric: () => ({ addDimension: () => undefined, addMetric: (name: string, _u: unknown, v: number) => void (counted[name] = (counted[name] ?? 0) + v) }),
  } as never;
  const h = createIngestHandler({ queue, ...memoryAuth([KEY]), metrics, limits });
  const post = async (path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}) => {
    const r = await h(apiEvent({ path, body, headers }), ctx);
    return { status: r.statusCode!, body: JSON.parse(r.body!) as { error?: string; message?: string; details?: { path: string; message: string }[]; accepted?: number } };
  };
  return { post, queued, counted };
}
const auth = { authorization: `Bearer ${KEY}` };

describe('#11 characters SQS would refuse are accepted and queued as sent', () => {
  it('emoji, U+FFFE, U+FFFF in an id, an event name and properties', async () => {
    const t = harness();
    const e = { distinctId: 'u-😀', event: 'e\uFFFE', properties: { f: '😀', g: 'x\uFFFFy' } };
    expect((await t.post('/v1/usage', JSON.stringify(e), auth)).status).toBe(202);
    expect(t.queued[0]![0]).toMatchObject({ distinct_id: 'u-😀', event: 'e\uFFFE', properties: { f: '😀', g: 'x\uFFFFy' } });
    const [m] = packMessages(t.queued[0]!, 1 << 20);
    expect(/^[\x20-\x7e]*$/.test(m!.body)).toBe(true);
  });
});

describe('#13 values that broke later stages are a 400 naming the field', () => {
  it('JSON nested 4,500 levels deep', async () => {
    const t = harness();
    const body = `{"distinctId":"u","properties":{"x":${'['.repeat(4500)}${']'.repeat(4500)}}}`;
    const r = await t.post('/v1/usage', body, auth);
    expect(r.status).toBe(400);
    expect(r.body.details![0]).toEqual({ path: expect.stringMatching(/^properties\.x\.0\.0/), message: `nested deeper than ${MAX_JSON_DEPTH} levels` });
    expect(t.queued).toEqual([]);
  });

  it('"timestamp": 1e20 (native) and "offset": 1e20 (PostHog)', async () => {
    const t = harness();
    const a = await t.post('/v1/usage', JSON.stringify({ batch: [{ distinctId: 'u' }, { distinctId: 'u', timestamp: 1e20 }] }), auth);
    expect(a.status).toBe(400);
    expect(a.body.details).toEqual([{ path: 'batch.1.timestamp', message: expect.stringMatching(/within the last 35 days and at most 1 day ahead/) }]);
    const b = await t.post('/batch/', JSON.stringify({ api_key: KEY, batch: [{ event: 'e', distinct_id: 'u', offset: 1e20 }] }));
    expect(b.status).toBe(400);
    expect(b.body.details).toEqual([{ path: 'batch.0.offset', message: expect.stringMatching(/within the last 35 days/) }]);
    expect(t.queued).toEqual([]);
  });
});

describe('#14 times outside [now − 35 days, now + 1 day] are a 400', () => {
  it('year 275760, sent_at 8e15, 36 days ago, 2 days ahead; 34 days ago and 23 hours ahead are fine', async () => {
    const t = harness();
    const now = Date.now();
    const bad = [
      await t.post('/capture/', JSON.stringify({ api_key: KEY, event: 'e', distinct_id: 'u', timestamp: '+275760-09-13T00:00:00.000Z' })),
      await t.post('/batch/', JSON.stringify({ api_key: KEY, sent_at: 8e15, batch: [{ event: 'e', distinct_id: 'u' }] })),
      await t.post('/v1/usage', JSON.stringify({ distinctId: 'u', timestamp: now - 36 * 86_400_000 }), auth),
      await t.post('/v1/usage', JSON.stringify({ distinctId: 'u', timestamp: now + 2 * 86_400_000 }), auth),
    ];
    expect(bad.map((r) => [r.status, r.body.details?.[0]?.path])).toEqual([
      [400, 'timestamp'],
      [400, 'sent_at'],
      [400, 'timestamp'],
      [400, 'timestamp'],
    ]);
    expect(t.queued).toEqual([]);
    expect((await t.post('/v1/usage', JSON.stringify({ batch: [{ distinctId: 'u', timestamp: now - 34 * 86_400_000 }, { distinctId: 'u', timestamp: now + 23 * 3_600_000 }] }), auth)).status).toBe(202);
  });

  it('the window follows TALLY_MAX_EVENT_AGE_DAYS', async () => {
    const t = harness({ maxEventAgeMs: 40 * 86_400_000 });
    expect((await t.post('/v1/usage', JSON.stringify({ distinctId: 'u', timestamp: Date.now() - 36 * 86_400_000 }), auth)).status).toBe(202);
  });

  it('a client clock off by days is judged after correction with sent_at, as PostHog corrects it', async () => {
    const t = harness();
    const clientNow = Date.now() + 5 * 3_600_000; // 5 hours ahead: sent_at is in range, the corrected time is now
    const r = await t.post('/batch/', JSON.stringify({ api_key: KEY, sent_at: new Date(clientNow).toISOString(), batch: [{ event: 'e', distinct_id: 'u', timestamp: new Date(clientNow - 1000).toISOString() }] }));
    expect(r.status).toBe(200);
    expect(Math.abs(Date.parse(t.queued[0]![0]!.timestamp) - (Date.now() - 1000))).toBeLessThan(2000);
  });
});

describe('#15 the tally key is never queued, forwarded or sampled', () => {
  it('properties.token, $token and api_key are removed (PostHog routes and native)', async () => {
    const t = harness();
    await t.post('/e/', JSON.stringify({ event: '$pageview', distinct_id: 'u', properties: { token: KEY, $token: KEY, api_key: KEY, $current_url: 'https://x' } }));
    await t.post('/v1/usage', JSON.stringify({ distinctId: 'u', properties: { api_key: KEY, route: '/a' } }), auth);
    expect(t.queued.map((q) => q[0]!.properties)).toEqual([{ $current_url: 'https://x' }, { route: '/a' }]);
    expect(JSON.stringify(t.queued)).not.toContain(KEY);
  });
});

describe('#16 the key is checked before costly work', () => {
  /** ~110 KB of gzip that inflate to ~19 MB, with a wrong key first, as in the adversarial run. */
  const bomb = () => zlib.gzipSync(JSON.stringify({ api_key: 'phc_wrong', batch: Array.from({ length: 60_000 }, () => ({ event: 'big_route', distinct_id: 'u', properties: { pad: 'x'.repeat(250) } })) }));
  /** The same, but corrupt after its first 2 KB: decompressing it in full would fail with a 400. */
  const truncatedBomb = () => {
    const gz = bomb();
    return Buffer.concat([gz.subarray(0, 2048), Buffer.alloc(gz.length - 2048, 0xff)]);
  };

  it('a wrong body key at the start of a gzip body: 401 after a bounded probe, without decompressing the body in full', async () => {
    const t = harness();
    expect(bomb().length).toBeLessThan(150_000);
    expect(zlib.gunzipSync(bomb()).length).toBeGreaterThan(18_000_000);
    const r = await t.post('/batch/', truncatedBomb(), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(r.status).toBe(401); // a full decompression would have answered 400 "does not decompress"
    // The same body with the right key gets that far, and is refused for what it is.
    const right = zlib.gzipSync(JSON.stringify({ api_key: KEY, batch: [] }));
    expect((await t.post('/batch/', Buffer.concat([right.subarray(0, 20), Buffer.alloc(200, 0xff)]))).status).toBe(400);
  });

  it('a wrong header key: 401 before the body is even looked at', async () => {
    const t = harness();
    const r = await t.post('/batch/', Buffer.alloc(4096, 0xff), { authorization: 'Bearer wrong-key-123' });
    expect(r.status).toBe(401);
  });

  it('a body key elsewhere is checked right after parsing, before the events are validated', async () => {
    const t = harness();
    const invalidEvents = Array.from({ length: 100 }, () => ({ notAnEvent: true }));
    const r = await t.post('/batch/', JSON.stringify({ batch: invalidEvents, api_key: 'phc_wrong' }));
    expect(r.status).toBe(401); // not the 400 validation would give
  });
});

describe('#17 bodies that are not what a route takes get a message a person understands', () => {
  it.each([
    ['null', /not null/],
    ['42', /not a number/],
    ['true', /not a boolean/],
    ['"x"', /not a string/],
    ['foo=bar', /form-encoded body without a data field/],
  ])('%s', async (body, message) => {
    const t = harness();
    for (const path of ['/v1/usage', '/batch/']) {
      const r = await t.post(path, body, path === '/v1/usage' ? auth : { 'x-api-key': KEY });
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(message);
      expect(r.body.message).not.toMatch(/Unexpected token/);
    }
  });
});

describe('#18 events per request, as the README says', () => {
  it(`native: ${MAX_BATCH_EVENTS}; PostHog routes: ${MAX_POSTHOG_BATCH_EVENTS}`, async () => {
    const t = harness();
    const native = (n: number) => JSON.stringify({ batch: Array.from({ length: n }, () => ({ distinctId: 'u' })) });
    const ph = (n: number) => JSON.stringify({ api_key: KEY, batch: Array.from({ length: n }, () => ({ event: 'e', distinct_id: 'u' })) });
    expect((await t.post('/v1/usage', native(MAX_BATCH_EVENTS), auth)).status).toBe(202);
    expect((await t.post('/v1/usage', native(MAX_BATCH_EVENTS + 1), auth)).status).toBe(400);
    expect((await t.post('/batch/', ph(MAX_POSTHOG_BATCH_EVENTS))).status).toBe(200);
    const over = await t.post('/batch/', ph(MAX_POSTHOG_BATCH_EVENTS + 1));
    expect(over.status).toBe(400);
    expect(over.body.details).toEqual([{ path: 'batch', message: `must hold at most ${MAX_POSTHOG_BATCH_EVENTS} events` }]);
  });
});

describe('#19 a numeric distinct id is kept exactly as sent', () => {
  it('12345678901234567890 stays 12345678901234567890 on both APIs', async () => {
    const t = harness();
    await t.post('/v1/usage', '{"distinctId":12345678901234567890}', auth);
    await t.post('/batch/', `{"api_key":"${KEY}","batch":[{"event":"e","distinct_id":12345678901234567890},{"event":"e","properties":{"distinct_id":98765432109876543210}}]}`);
    expect(t.queued.flat().map((e) => e.distinct_id)).toEqual(['12345678901234567890', '12345678901234567890', '98765432109876543210']);
  });
});

describe('Idempotency-Key: a retried request makes the same uuids, so its messages count once', () => {
  it('same key → same uuids and message ids; another key → others; client uuids are kept', async () => {
    const t = harness();
    const body = JSON.stringify({ batch: [{ distinctId: 'a' }, { distinctId: 'b', uuid: '01a2043c-723f-7daa-976a-4d831d323237' }] });
    await t.post('/v1/usage', body, { ...auth, 'idempotency-key': 'order-42' });
    await t.post('/v1/usage', body, { ...auth, 'idempotency-key': 'order-42' });
    await t.post('/v1/usage', body, { ...auth, 'idempotency-key': 'order-43' });
    await t.post('/v1/usage', body, auth);
    const uuids = t.queued.map((q) => q.map((e) => e.uuid));
    expect(uuids[0]).toEqual(uuids[1]);
    expect(uuids[2]![0]).not.toBe(uuids[0]![0]);
    expect(uuids.every((u) => u[1] === '01a2043c-723f-7daa-976a-4d831d323237')).toBe(true);
    expect(packMessages(t.queued[0]!, 1 << 20)[0]!.id).toBe(packMessages(t.queued[1]!, 1 << 20)[0]!.id);
    expect(uuids[3]![0]).not.toBe(uuids[0]![0]); // without a key: a fresh UUIDv7
  });

  it('a malformed key is a 400 naming the header', async () => {
    const t = harness();
    const r = await t.post('/v1/usage', '{"distinctId":"u"}', { ...auth, 'idempotency-key': 'é'.repeat(3) });
    expect(r.status).toBe(400);
    expect(r.body.details).toEqual([{ path: 'idempotency-key (header)', message: 'must be 1–200 printable ASCII characters' }]);
  });
});

describe('bodies altered in transit (#4)', () => {
  it('gzip delivered as lossy text: a 400 naming the client setting, counted in BodiesAlteredInTransit', async () => {
    const t = harness();
    const gz = zlib.gzipSync(JSON.stringify({ api_key: KEY, batch: [{ event: 'e', distinct_id: 'u' }] }));
    const lossy = gz.toString('utf8');
    const r = await t.post('/batch/', lossy, { 'content-type': 'text/plain' });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('body_altered_in_transit');
    expect(t.counted[METRICS.BodiesAlteredInTransit]).toBe(1);
    expect(t.queued).toEqual([]);
  });
});
