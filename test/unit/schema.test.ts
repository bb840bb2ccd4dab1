import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseNativeBody, parsePostHogBody } from '../../src/ingest/schema';
import { fromNative, fromPostHog } from '../../src/ingest/normalise';
import { BadRequestError } from '../../src/errors';

const fixture = JSON.parse(readFileSync(resolve(__dirname, '../fixtures/posthog-node-5.70/batch.request.json'), 'utf8')).body;

function problemsOf(fn: () => unknown): { message: string; details?: { path: string; message: string }[] } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BadRequestError);
    return { message: (e as BadRequestError).message, details: (e as BadRequestError).details };
  }
  throw new Error('expected a 400');
}

describe('native schema', () => {
  it('defaults the event name to api_call and stringifies numeric ids', () => {
    const [e] = parseNativeBody({ distinctId: 42 });
    expect(e).toMatchObject({ distinctId: '42', event: 'api_call' });
  });

  it('accepts a batch and epoch-ms or ISO timestamps', () => {
    const evs = parseNativeBody({ batch: [{ distinctId: 'a', timestamp: 1_700_000_000_000 }, { distinctId: 'b', timestamp: '2026-11-22T10:00:00Z' }] });
    expect(evs.map((e) => e.timestamp)).toEqual([1_700_000_000_000, Date.parse('2026-11-22T10:00:00Z')]);
  });

  it('lists every bad field of a batch with its path, and accepts nothing', () => {
    const p = problemsOf(() =>
      parseNativeBody({ batch: [{ distinctId: 'ok' }, { distinctId: '' }, { event: 'x'.repeat(201), distinctId: 'x'.repeat(201) }, { distinctId: 'u', timestamp: 'yesterday', uuid: 'nope' }] }),
    );
    expect(p.message).toBe('3 of 4 events are invalid; nothing was accepted');
    const paths = p.details!.map((d) => d.path).sort();
    expect(paths).toEqual(['batch.1.distinctId', 'batch.2.distinctId', 'batch.2.event', 'batch.3.timestamp', 'batch.3.uuid'].sort());
    expect(p.details!.find((d) => d.path === 'batch.1.distinctId')!.message).toBe('must not be empty');
    expect(p.details!.find((d) => d.path === 'batch.2.distinctId')!.message).toMatch(/at most 200/);
  });

  it('caps a batch at 1000 events', () => {
    const p = problemsOf(() => parseNativeBody({ batch: Array.from({ length: 1001 }, () => ({ distinctId: 'u' })) }));
    expect(p.details).toEqual([{ path: 'batch', message: 'must hold at most 1000 events' }]);
  });

  it('names a missing distinctId', () => {
    expect(problemsOf(() => parseNativeBody({ event: 'x' })).details).toEqual([{ path: 'distinctId', message: 'is required' }]);
  });
});

describe('PostHog schema', () => {
  it('reads the real posthog-node 5.70 batch: token, sent_at, 26 events, numeric id as string', () => {
    const b = parsePostHogBody(fixture);
    expect(b.token).toBe('phc_testprojectkey');
    expect(b.sentAt).toBe(Date.parse('2026-11-22T17:10:00.001Z'));
    expect(b.events).toHaveLength(26);
    expect(b.events.find((e) => e.event === 'movie played')!.distinct_id).toBe('1234');
  });

  it('takes the distinct id from properties and the token from the event, as PostHog does', () => {
    const b = parsePostHogBody({ event: 'e', properties: { distinct_id: 7, token: 'phc_x' } });
    expect(b.events[0]!.distinct_id).toBe('7');
    expect(b.token).toBe('phc_x');
  });

  it('accepts an array of events', () => {
    expect(parsePostHogBody([{ event: 'a', distinct_id: 'u' }, { event: 'b', distinct_id: 'v' }]).events).toHaveLength(2);
  });

  it('rejects an event without a distinct id, naming it', () => {
    const p = problemsOf(() => parsePostHogBody({ api_key: 'k', batch: [{ event: 'a', distinct_id: 'u' }, { event: 'b' }] }));
    expect(p.details).toEqual([{ path: 'batch.1.distinct_id', message: 'is required' }]);
  });
});

describe('normalise', () => {
  it('corrects client clock skew with sent_at, like PostHog', () => {
    const [e] = parsePostHogBody({ api_key: 'k', sent_at: '2026-01-01T00:00:10.000Z', batch: [{ event: 'a', distinct_id: 'u', timestamp: '2026-01-01T00:00:08.000Z' }] }).events;
    const q = fromPostHog(e!, { receivedAt: Date.parse('2026-01-01T00:05:00.000Z'), sentAt: Date.parse('2026-01-01T00:00:10.000Z') });
    expect(q.timestamp).toBe('2026-01-01T00:04:58.000Z');
  });

  it('keeps the client uuid, assigns a UUIDv7 otherwise, records the IP and receipt time', () => {
    const [a, b] = parseNativeBody({ batch: [{ distinctId: 'u', uuid: '01a2043c-723f-7daa-976a-4d831d323237' }, { distinctId: 'u' }] });
    const ctx = { receivedAt: 1_700_000_000_000, ip: '203.0.113.9' };
    expect(fromNative(a!, ctx).uuid).toBe('01a2043c-723f-7daa-976a-4d831d323237');
    const q = fromNative(b!, ctx);
    expect(q.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(q).toMatchObject({ ip: '203.0.113.9', received_at: 1_700_000_000_000, timestamp: new Date(1_700_000_000_000).toISOString() });
  });

  it('moves top-level $set into properties', () => {
    const [e] = parsePostHogBody({ event: '$identify', distinct_id: 'u', $set: { plan: 'pro' } }).events;
    expect(fromPostHog(e!, { receivedAt: 0 }).properties).toEqual({ $set: { plan: 'pro' } });
  });
});
