/**
 * The client against a real HTTP stand-in for tally (test/support/tally-standin.ts: real gzip, real
 * sockets, tally's counting rule): batching by size, time and bytes, retries with the same uuids,
 * Retry-After, no retry on a 4xx, drop-oldest, validation, and the pure backoff and uuid helpers.
 */
import { backoffDelay, createTally, parseRetryAfter, TallyError, uuidv7, type Tally, type TallyOptions } from '../../client/src';
import { serialiseProperties } from '../../client/src/event';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTallyStandin, type TallyStandin } from '../support/tally-standin';
import { sleep, until } from '../support/wait';

const KEY = 'tally_standin_key';
let standin: TallyStandin;
const clients: Tally[] = [];

beforeEach(async () => {
  standin = await startTallyStandin({ key: KEY });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.shutdown({ timeoutMs: 0 });
  await standin.stop();
});

function client(o: Partial<TallyOptions> = {}, errors: TallyError[] = []): Tally {
  const t = createTally({ url: standin.url, key: KEY, onError: (e) => errors.push(e), ...o });
  clients.push(t);
  return t;
}

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('batching', () => {
  it('cuts a batch at flushAt events and sends it gzipped with the key; the rest goes after flushIntervalMs', async () => {
    const t = client({ flushAt: 100, flushIntervalMs: 300 });
    const uuids = Array.from({ length: 250 }, (_, i) => t.track({ distinctId: `user-${i % 7}`, event: 'big_route', properties: { route: '/big/:id', i } })!);
    await until(() => standin.requests.length === 2);
    // Two full batches went at once; the last 50 wait for the interval.
    expect(standin.requests.map((r) => r.uuids.length)).toEqual([100, 100]);
    await until(() => t.stats().delivered === 250);
    expect(standin.requests.map((r) => r.uuids.length)).toEqual([100, 100, 50]);
    expect(standin.requests.flatMap((r) => r.uuids)).toEqual(uuids);
    for (const r of standin.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(r.gzipped).toBe(true);
    }
    expect(uuids.every((u) => UUIDV7.test(u))).toBe(true);
    expect(new Set(uuids).size).toBe(250);
    const e = standin.requests[0]!.events[3]!;
    expect(e).toEqual({ uuid: uuids[3], distinctId: 'user-3', event: 'big_route', timestamp: expect.any(Number), properties: { route: '/big/:id', i: 3 } });
    expect(Math.abs((e.timestamp as number) - Date.now())).toBeLessThan(10_000);
    expect(t.stats()).toMatchObject({ tracked: 250, delivered: 250, queued: 0, requests: 3, retries: 0, dropped: 0 });
  });

  it('sends nothing before the interval, then one request for everything tracked in it', async () => {
    const t = client({ flushIntervalMs: 200 });
    for (let i = 0; i < 5; i++) t.track({ distinctId: i });
    await sleep(50);
    expect(standin.requests).toHaveLength(0);
    await until(() => standin.requests.length === 1);
    expect(standin.requests[0]!.events.map((e) => e.distinctId)).toEqual([0, 1, 2, 3, 4]);
    // Under 1 KB it is not worth compressing.
    expect(standin.requests[0]!.gzipped).toBe(false);
  });

  it('flush() sends what is buffered now and resolves once tally has it', async () => {
    const t = client({ flushIntervalMs: 60_000 });
    t.track({ distinctId: 'a', event: 'e1' });
    t.track({ distinctId: 'b', timestamp: new Date('2026-01-02T03:04:05.000Z') });
    expect(await t.flush()).toEqual({ pending: 0 });
    expect(standin.requests).toHaveLength(1);
    expect(standin.requests[0]!.events.map((e) => [e.event, e.timestamp])).toEqual([
      ['e1', expect.any(Number)],
      ['api_call', Date.parse('2026-01-02T03:04:05.000Z')],
    ]);
    expect(await t.flush()).toEqual({ pending: 0 });
    expect(standin.requests).toHaveLength(1);
  });

  it('cuts a batch before its JSON exceeds maxBatchBytes', async () => {
    const t = client({ maxBatchBytes: 10_000, flushIntervalMs: 60_000 });
    for (let i = 0; i < 100; i++) t.track({ distinctId: `u${i}`, properties: { pad: 'x'.repeat(400) } });
    await t.flush();
    expect(standin.requests.length).toBeGreaterThanOrEqual(5);
    for (const r of standin.requests) expect(Buffer.byteLength(JSON.stringify({ batch: r.events }))).toBeLessThanOrEqual(10_000);
    expect(standin.requests.reduce((n, r) => n + r.uuids.length, 0)).toBe(100);
  });
});

describe('retries', () => {
  it('resends the same uuids in the same order after 5xx and network errors, and tally counts them once', async () => {
    const errors: TallyError[] = [];
    const t = client({ flushAt: 50, retryBaseDelayMs: 5, retryMaxDelayMs: 20 }, errors);
    // 503, then an answer lost after tally took the batch, then 500, then accepted.
    standin.respond = (r, i) => (i === 0 ? { status: 503, body: '{"error":"queue_unavailable"}' } : i === 1 ? 'lose' : i === 2 ? { status: 500 } : { status: 202, body: `{"accepted":${r.uuids.length}}` });
    const uuids = Array.from({ length: 50 }, (_, i) => t.track({ distinctId: `u${i % 3}` })!);
    await until(() => t.stats().delivered === 50);
    expect(standin.requests).toHaveLength(4);
    for (const r of standin.requests) expect(r.uuids).toEqual(uuids);
    // tally counted the batch at the lost answer, and only then.
    expect(standin.requests.map((r) => r.counted)).toEqual([false, true, false, false]);
    expect(standin.countedTwice()).toEqual([]);
    expect(standin.lost(uuids)).toEqual([]);
    expect(t.stats()).toMatchObject({ requests: 4, retries: 3, delivered: 50, queued: 0 });
    expect(errors.map((e) => [e.code, e.status])).toEqual([
      ['send_failed', 503],
      ['send_failed', undefined],
      ['send_failed', 500],
    ]);
    expect(errors[0]!.message).toMatch(/same uuids/);
  });

  it('retries 408 and 429 too', async () => {
    const t = client({ flushAt: 1, retryBaseDelayMs: 1, retryMaxDelayMs: 5 });
    standin.respond = (_r, i) => (i === 0 ? { status: 408 } : i === 1 ? { status: 429 } : { status: 202, body: '{}' });
    t.track({ distinctId: 'x' });
    await until(() => t.stats().delivered === 1);
    expect(standin.requests.map((r) => r.answer)).toEqual([408, 429, 202]);
  });

  it.each([429, 503])('waits as long as Retry-After says on %i, whatever the backoff would be', async (status) => {
    const t = client({ flushAt: 1, retryBaseDelayMs: 0, retryMaxDelayMs: 0 });
    standin.respond = (_r, i) => (i === 0 ? { status, headers: { 'retry-after': '1' } } : { status: 202, body: '{}' });
    t.track({ distinctId: 'x' });
    await until(() => t.stats().delivered === 1, 5000);
    const [a, b] = standin.requests;
    // Without Retry-After the backoff here is 0 ms.
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(950);
  });

  it.each([400, 401, 403, 404, 413, 422])('does not retry a %i: the batch is reported and dropped', async (status) => {
    const errors: TallyError[] = [];
    const t = client({ flushAt: 10, retryBaseDelayMs: 1 }, errors);
    standin.respond = () => ({ status, body: JSON.stringify({ error: 'invalid_request', message: `refused with ${status}` }) });
    for (let i = 0; i < 10; i++) t.track({ distinctId: i });
    await until(() => t.stats().rejected === 10);
    await sleep(50);
    expect(standin.requests).toHaveLength(1);
    expect(t.stats()).toMatchObject({ rejected: 10, delivered: 0, queued: 0, retries: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TallyError);
    expect(errors[0]).toMatchObject({ code: 'rejected', status, events: 10 });
    expect(errors[0]!.message).toContain(`refused with ${status}`);
  });

  it('keeps retrying while tally is unreachable, and delivers everything once it is back', async () => {
    const t = client({ flushAt: 20, flushIntervalMs: 10, retryBaseDelayMs: 5, retryMaxDelayMs: 50 });
    await standin.goDown();
    const uuids = Array.from({ length: 200 }, (_, i) => t.track({ distinctId: `u${i % 4}` })!);
    await sleep(300);
    expect(t.stats().delivered).toBe(0);
    expect(t.stats().retries).toBeGreaterThan(0);
    await standin.comeBack();
    await until(() => t.stats().delivered === 200);
    expect(standin.lost(uuids)).toEqual([]);
    expect(standin.countedTwice()).toEqual([]);
    expect(t.stats()).toMatchObject({ queued: 0, dropped: 0 });
  });
});

describe('bounded memory', () => {
  it('drops the oldest batch when maxQueue is reached, counts it, and delivers the newest once tally is back', async () => {
    const errors: TallyError[] = [];
    const t = client({ flushAt: 100, maxQueue: 300, concurrency: 1, flushIntervalMs: 60_000 }, errors);
    // tally throttles: the first batch waits a second.
    standin.respond = (_r, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 202, body: '{}' });
    const first = Array.from({ length: 100 }, (_, i) => t.track({ distinctId: i })!);
    await until(() => standin.requests.length === 1);
    await sleep(20);
    const rest = Array.from({ length: 400 }, (_, i) => t.track({ distinctId: 100 + i })!);
    expect(rest.every(Boolean)).toBe(true);
    expect(t.stats()).toMatchObject({ tracked: 500, dropped: 200, queued: 300 });
    expect(errors.filter((e) => e.code === 'buffer_full').map((e) => e.events)).toEqual([100, 100]);
    await t.flush({ timeoutMs: 5000 });
    expect(t.stats()).toMatchObject({ delivered: 300, dropped: 200, queued: 0 });
    // The oldest batches not in a request at that moment went: the first (waiting for its retry), and
    // the third (the second was in flight by then, so it was kept).
    const delivered = standin.requests.filter((r) => r.counted).flatMap((r) => r.uuids);
    expect(delivered.sort()).toEqual([...rest.slice(0, 100), ...rest.slice(200)].sort());
    expect(standin.lost([...first, ...rest.slice(100, 200)])).toHaveLength(200);
    const s = t.stats();
    expect(s.tracked + s.replayed).toBe(s.delivered + s.dropped + s.rejected + s.queued);
  });
});

describe('transports', () => {
  it('sends through a given fetch (as on Deno, Bun, Workers), gzipped, and honours Retry-After there too', async () => {
    const t = client({ fetch: globalThis.fetch, flushAt: 100, retryBaseDelayMs: 0, retryMaxDelayMs: 0 });
    standin.respond = (r, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 202, body: `{"accepted":${r.uuids.length}}` });
    const uuids = Array.from({ length: 100 }, (_, i) => t.track({ distinctId: i })!);
    await until(() => t.stats().delivered === 100, 5000);
    expect(standin.requests.map((r) => [r.gzipped, r.uuids])).toEqual([
      [true, uuids],
      [true, uuids],
    ]);
    expect(standin.requests[1]!.at - standin.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('keeps the JSON exact: escaping in ids and names, numbers, unicode', async () => {
    const t = client({ flushIntervalMs: 60_000 });
    const odd = 'a"b\\c\u2028é😀\n';
    t.track({ distinctId: odd, event: `ev ${odd}`, properties: { [odd]: odd, n: -0.5, nested: { a: [1, null, true] } } });
    t.track({ distinctId: 1234567890123 });
    await t.flush();
    const [a, b] = standin.requests[0]!.events;
    expect(a).toMatchObject({ distinctId: odd, event: `ev ${odd}`, properties: { [odd]: odd, n: -0.5, nested: { a: [1, null, true] } } });
    expect(b).toMatchObject({ distinctId: 1234567890123, event: 'api_call' });
    expect(b!.properties).toBeUndefined();
  });
});

describe('validation', () => {
  it('refuses, alone, each event tally would reject, and sends the good ones', async () => {
    const errors: TallyError[] = [];
    const t = client({ flushIntervalMs: 60_000 }, errors);
    const bad: unknown[] = [
      {},
      { distinctId: '' },
      { distinctId: 'x'.repeat(201) },
      { distinctId: Number.NaN },
      { distinctId: { id: 1 } },
      { distinctId: 'u', event: '' },
      { distinctId: 'u', event: 'e'.repeat(201) },
      { distinctId: 'u', timestamp: 'yesterday' },
      { distinctId: 'u', properties: [1, 2] },
      null,
    ];
    for (const e of bad) expect(t.track(e as never)).toBeUndefined();
    expect(t.track({ distinctId: 42, event: 'e'.repeat(200) })).toMatch(UUIDV7);
    expect(t.track({ distinctId: 'x'.repeat(200), timestamp: 0 })).toMatch(UUIDV7);
    // What only writing the JSON reveals is found when the batch is cut: left out, alone, and counted.
    expect(t.track({ distinctId: 'u', properties: { n: BigInt(1) } })).toMatch(UUIDV7);
    expect(t.track({ distinctId: 'u', properties: { big: 'x'.repeat(900_000) } })).toMatch(UUIDV7);
    await t.flush();
    expect(errors.map((e) => e.code)).toEqual(Array(bad.length + 1).fill('invalid_event'));
    expect(errors.map((e) => e.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/distinctId is required/), expect.stringMatching(/at most 200/), expect.stringMatching(/timestamp/), expect.stringMatching(/2 event\(s\) could not be written.*BigInt/)]),
    );
    expect(standin.requests).toHaveLength(1);
    expect(standin.requests[0]!.uuids).toHaveLength(2);
    expect(t.stats()).toMatchObject({ tracked: 4, invalid: bad.length, rejected: 2, delivered: 2, queued: 0 });
  });

  it('with a spool, refuses at track() what cannot be written (it must be on disk when track() returns)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-validate-'));
    try {
      const errors: TallyError[] = [];
      const t = client({ spool: dir }, errors);
      expect(t.track({ distinctId: 'u', properties: { n: BigInt(1) } })).toBeUndefined();
      expect(t.track({ distinctId: 'u', properties: { big: 'x'.repeat(900_000) } })).toBeUndefined();
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/BigInt/), expect.stringMatching(/more than the 800000/)]);
      expect(t.stats()).toMatchObject({ tracked: 0, invalid: 2 });
      await t.shutdown();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses track() after shutdown()', async () => {
    const errors: TallyError[] = [];
    const t = client({}, errors);
    t.track({ distinctId: 'a' });
    expect(await t.shutdown()).toEqual({ pending: 0 });
    expect(t.track({ distinctId: 'b' })).toBeUndefined();
    expect(errors.map((e) => e.code)).toEqual(['closed']);
    expect(standin.requests).toHaveLength(1);
  });

  it('throws an invalid_options TallyError for options it cannot work with', () => {
    const base = { url: 'http://127.0.0.1:1', key: 'k' };
    for (const o of [{ ...base, url: 'localhost:3000' }, { ...base, key: '' }, { ...base, flushAt: 1001 }, { ...base, flushAt: 0 }, { ...base, maxQueue: 10, flushAt: 100 }, { ...base, flushIntervalMs: -1 }, { ...base, compression: 'br' }]) {
      expect(() => createTally(o as TallyOptions)).toThrow(expect.objectContaining({ name: 'TallyError', code: 'invalid_options' }));
    }
  });

  it('posts to <url>/v1/usage, keeping a stage path', async () => {
    const seen: string[] = [];
    const fetch = async (url: string) => {
      seen.push(url);
      return { status: 202, headers: { get: () => null }, text: async () => '' };
    };
    for (const url of ['https://x.example/prod', 'https://x.example/', 'https://x.example/v1/usage']) {
      const t = createTally({ url, key: 'k', fetch });
      t.track({ distinctId: 'a' });
      await t.shutdown();
    }
    expect(seen).toEqual(['https://x.example/prod/v1/usage', 'https://x.example/v1/usage', 'https://x.example/v1/usage']);
  });

  it('an onError that throws does not break tracking', async () => {
    const t = client({
      flushAt: 1,
      onError: () => {
        throw new Error('bad hook');
      },
    });
    expect(t.track({ distinctId: '' })).toBeUndefined();
    expect(t.track({ distinctId: 'ok' })).toMatch(UUIDV7);
    await t.flush();
    expect(t.stats().delivered).toBe(1);
  });
});

describe('helpers', () => {
  it('backoffDelay: full jitter under an exponential ceiling', () => {
    expect(backoffDelay(1, 200, 30_000, () => 0.999999)).toBe(200);
    expect(backoffDelay(3, 200, 30_000, () => 0.5)).toBe(400);
    expect(backoffDelay(20, 200, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(4, 200, 30_000, () => 0)).toBe(0);
    const draws = Array.from({ length: 1000 }, () => backoffDelay(5, 100, 30_000));
    expect(Math.max(...draws)).toBeLessThanOrEqual(1600);
    expect(new Set(draws).size).toBeGreaterThan(100);
  });

  it('parseRetryAfter: seconds or an HTTP date, bounded', () => {
    const now = Date.parse('2026-10-21T07:27:58Z');
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', now)).toBe(2000);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('86400')).toBe(5 * 60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('serialiseProperties writes what JSON.stringify writes', () => {
    const date = new Date('2026-01-02T03:04:05.678Z');
    const withToJson = { toJSON: () => ({ replaced: true }), x: 1 };
    const inherited = Object.create({ inheritedKey: 'no' }) as Record<string, unknown>;
    inherited.own = 'yes';
    const cases: Array<Record<string, unknown>> = [
      {},
      { route: '/big/:id', method: 'GET', status: 200, duration_ms: 1.7 },
      { s: 'quote " backslash \\ newline \n tab \t nul \u0000 line sep \u2028 é 😀', long: 'x'.repeat(100) },
      { n: -0, big: 1e21, small: 1e-7, nan: Number.NaN, inf: -Infinity, int: 42 },
      { t: true, f: false, nil: null, undef: undefined, fn: () => 1, sym: Symbol('s') },
      { date, nested: { a: [1, 'two', null, undefined, { deep: true }] }, arr: [] },
      { 2: 'numeric keys first', 1: 'in order', b: 'then', a: 'insertion order' },
      { [Symbol('hidden')]: 1, visible: 2 },
      withToJson,
      inherited,
    ];
    for (const c of cases) expect(serialiseProperties(c)).toBe(JSON.stringify(c));
    expect(() => serialiseProperties({ n: BigInt(1) })).toThrow(TypeError);
  });

  it('uuidv7: version 7, the time in the first 48 bits, unique', () => {
    const now = Date.parse('2026-05-04T03:02:01.000Z');
    const u = uuidv7(now);
    expect(u).toMatch(UUIDV7);
    expect(parseInt(u.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
    const many = Array.from({ length: 10_000 }, () => uuidv7());
    expect(new Set(many).size).toBe(10_000);
    expect(many.every((x) => UUIDV7.test(x))).toBe(true);
  });
});
