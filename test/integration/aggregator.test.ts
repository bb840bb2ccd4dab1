/**
 * The aggregator against dynalite (real DynamoDB wire protocol): exact counts through crashes at
 * every step, redeliveries, SQS duplicates and PostHog outages.
 */
import { aggregateRecords, drainOutbox, type AggregatorDeps } from '../../src/aggregate/aggregator';
import { queryUsage } from '../../src/query/query';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { faultyApi, readCalls, RecordingSink, startTestDynamo, storeFor, type TestDynamo } from '../support/store';

let db: TestDynamo;
beforeAll(async () => {
  db = await startTestDynamo();
});
afterAll(async () => {
  await db.stop();
});

const T0 = Date.parse('2026-11-22T10:00:00.000Z');
let seq = 0;
function message(id: string, events: Array<[event: string, user: string, offsetMs: number]>): { messageId: string; body: string } {
  const body: QueueMessageBody = {
    v: 1,
    id,
    events: events.map(
      ([event, user, off]): QueuedEvent => ({
        uuid: `uuid-${++seq}`,
        event,
        distinct_id: user,
        properties: {},
        timestamp: new Date(T0 + off).toISOString(),
        received_at: T0,
      }),
    ),
  };
  return { messageId: `sqs-${id}-${++seq}`, body: JSON.stringify(body) };
}

/** 20 messages, 200 calls over 5 users and 3 minutes, plus an $identify. */
function workload(prefix: string) {
  const msgs = [];
  for (let m = 0; m < 20; m++) {
    const evs: Array<[string, string, number]> = [];
    for (let i = 0; i < 10; i++) evs.push(['big_route', `user-${(m + i) % 5}`, ((m * 10 + i) % 3) * 60_000 + i]);
    if (m === 0) evs.push(['$identify', 'user-0', 0]);
    msgs.push(message(`${prefix}-${m}`, evs));
  }
  return msgs;
}

async function total(deps: AggregatorDeps, event = 'big_route', distinctId?: string): Promise<number> {
  const q = await queryUsage(deps.store, { event, distinctId, granularity: 'day', from: String(T0 - 86_400_000), to: String(T0 + 86_400_000) }, T0);
  return q.total;
}
const batchCalls = (sink: RecordingSink) =>
  sink
    .unique()
    .filter((e) => e.event.endsWith('_batch'))
    .reduce((s, e) => s + (e.properties.calls as number), 0);

async function setup(over: Partial<AggregatorDeps> = {}) {
  const table = await db.newTable();
  const sink = new RecordingSink();
  let clock = T0;
  const deps: AggregatorDeps = { store: storeFor(db.api, table), sink, staleMs: 60_000, now: () => clock, ...over };
  return { table, sink, deps, advance: (ms: number) => (clock += ms) };
}

describe('aggregator (dynalite)', () => {
  it('counts every call once, in every granularity, and emits batch events that sum to it', async () => {
    const { deps, sink, table } = await setup();
    const r = await aggregateRecords(workload('a'), deps);
    expect(r).toMatchObject({ failures: [], counted: 20, duplicates: 0, calls: 200 });
    expect(await total(deps)).toBe(200);
    const minutes = await queryUsage(deps.store, { event: 'big_route', granularity: 'minute', from: String(T0), to: String(T0 + 180_000) }, T0);
    expect(minutes.series.map((p) => p.calls).reduce((a, b) => a + b, 0)).toBe(200);
    expect(minutes.series).toHaveLength(3);
    let perUser = 0;
    for (let u = 0; u < 5; u++) perUser += await total(deps, 'big_route', `user-${u}`);
    expect(perUser).toBe(200);
    expect(batchCalls(sink)).toBe(200);
    expect(sink.events.filter((e) => e.event === 'big_route_batch')).toHaveLength(5);
    expect(sink.events.filter((e) => e.event === '$identify')).toHaveLength(1);
    expect(await total(deps, '$identify')).toBe(0);
    // Idempotency marks are still there (released only after the stale period) ...
    expect((await readCalls(db.client, table, 't#day#big_route', '2026-11-22T00:00:00.000Z')).ap).toHaveLength(1);
  });

  it('acknowledges a redelivered batch as duplicates without counting it again', async () => {
    const { deps, sink } = await setup();
    const msgs = workload('b');
    await aggregateRecords(msgs, deps);
    const again = await aggregateRecords(msgs, deps);
    expect(again).toMatchObject({ failures: [], counted: 0, duplicates: 20, calls: 0 });
    expect(await total(deps)).toBe(200);
    expect(batchCalls(sink)).toBe(200);
  });

  it('counts SQS duplicate copies inside one batch once', async () => {
    const { deps } = await setup();
    const msgs = workload('c');
    const copies = [...msgs, ...msgs.slice(0, 5).map((m) => ({ ...m, messageId: `${m.messageId}-copy` }))];
    const r = await aggregateRecords(copies, deps);
    expect(r.failures).toEqual([]);
    expect(await total(deps)).toBe(200);
  });

  // [where, which calls fail, how many such calls succeed first, the day total right after the crash]
  it.each([
    ['after claiming, before the ledger', (name: string) => name === 'PutItemCommand', 21 /* 20 claims + outbox entry */, 0],
    ['in the middle of the counter updates', (name: string) => name === 'UpdateItemCommand', 20, undefined],
    ['after the counters, before marking the ledger applied', (name: string, input: Record<string, unknown>) => name === 'UpdateItemCommand' && String(input.UpdateExpression).startsWith('SET st'), 0, 200],
  ])('recovers exactly from a crash %s', async (_label, matches, skip, afterCrash) => {
    const { deps, sink, advance } = await setup();
    let seen = 0;
    const crashing = { ...deps, store: storeFor(faultyApi(db.api, (n, i) => matches(n, i) && ++seen > skip && seen <= skip + 1000), (deps.store as never as { o: { tableName: string } }).o.tableName) };
    const msgs = workload('d');
    const first = await aggregateRecords(msgs, crashing);
    expect(first.failures).toHaveLength(20);
    const partial = await total(deps);
    if (afterCrash !== undefined) expect(partial).toBe(afterCrash);

    // Redelivered before the claims are stale: the owner might be alive, so nothing is decided.
    const early = await aggregateRecords(msgs, deps);
    expect(early.failures).toHaveLength(20);
    expect(await total(deps)).toBe(partial);

    // After the visibility timeout (> stale period) the redelivery finishes the job exactly.
    advance(61_000);
    const retry = await aggregateRecords(msgs, deps);
    expect(retry.failures).toEqual([]);
    expect(await total(deps)).toBe(200);
    for (let u = 0; u < 5; u++) expect(await total(deps, 'big_route', `user-${u}`)).toBe(40);
    // And a further redelivery changes nothing.
    advance(61_000);
    await aggregateRecords(msgs, deps);
    expect(await total(deps)).toBe(200);
    expect(batchCalls(sink)).toBe(200);
  });

  it('keeps counting while PostHog is down, then delivers the same batch events from the outbox', async () => {
    const { deps, sink, advance } = await setup();
    sink.down = true;
    const r = await aggregateRecords(workload('e'), deps);
    expect(r.failures).toEqual([]); // PostHog never fails messages
    expect(r.sendFailed).toBe(6);
    expect(await total(deps)).toBe(200);
    expect(sink.events).toHaveLength(0);

    // While the run that wrote it may still be alive, the outbox leaves the ledger alone.
    expect(await drainOutbox(deps)).toMatchObject({ seen: 1, sent: 0, failed: 0, backlog: 0, waiting: 1 });
    advance(61_000);
    const stillDown = await drainOutbox(deps);
    expect(stillDown).toMatchObject({ seen: 1, failed: 6, backlog: 1 });

    sink.down = false;
    const drained = await drainOutbox(deps);
    expect(drained).toMatchObject({ sent: 6, done: 1, backlog: 0, waiting: 0 }); // applied long ago: released too
    expect(batchCalls(sink)).toBe(200);
    expect(await drainOutbox(deps)).toMatchObject({ seen: 0 });
    expect(await total(deps)).toBe(200);
  });

  it('releases idempotency marks only after the stale period, leaving counters small', async () => {
    const { deps, table, advance } = await setup();
    await aggregateRecords(workload('f'), deps);
    await drainOutbox(deps);
    expect((await readCalls(db.client, table, 't#day#big_route', '2026-11-22T00:00:00.000Z')).ap).toHaveLength(1);
    advance(61_000);
    await drainOutbox(deps);
    const item = await readCalls(db.client, table, 't#day#big_route', '2026-11-22T00:00:00.000Z');
    expect(item).toEqual({ calls: 200, ap: undefined });
  });

  it('drains an outbox larger than one page', async () => {
    const { deps, advance } = await setup();
    for (let i = 0; i < 7; i++) await aggregateRecords(workload(`p${i}`).slice(0, 3), deps);
    advance(61_000);
    const r = await drainOutbox({ ...deps, limit: 2, budgetMs: 10_000 });
    expect(r).toMatchObject({ done: 7, backlog: 0, waiting: 0 });
    expect(await deps.store.listOutbox(100)).toEqual([]);
  });

  it('reports unreadable messages as failures and counts the rest', async () => {
    const { deps } = await setup();
    const msgs = [...workload('g'), { messageId: 'garbage', body: 'not json' }, { messageId: 'wrong', body: '{"v":2}' }];
    const r = await aggregateRecords(msgs, deps);
    expect(r.failures.sort()).toEqual(['garbage', 'wrong']);
    expect(await total(deps)).toBe(200);
  });

  it('splits a batch whose ledger would not fit one item, still exact', async () => {
    const { deps, sink } = await setup({ maxLedgerBytes: 2 * 1024 });
    const r = await aggregateRecords(workload('h'), deps);
    expect(r.failures).toEqual([]);
    expect(await total(deps)).toBe(200);
    expect(new Set(sink.events.map((e) => e.properties.tally_batch_id)).size).toBeGreaterThan(1);
    expect(batchCalls(sink)).toBe(200);
  });
});
