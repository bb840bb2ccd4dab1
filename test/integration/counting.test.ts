/**
 * Counting v2 against dynalite (the real DynamoDB wire protocol): aggregator runs, roll-ups, the
 * outbox and the queries, with crashes and lost answers injected at every step, exact throughout.
 */
import { aggregateRecords, type AggregatorDeps } from '../../src/aggregate/aggregator';
import { queryBreakdown, breakdownCsv } from '../../src/query/breakdown';
import { queryEvents } from '../../src/query/events';
import { queryUsage } from '../../src/query/query';
import { runRollup, type RollupDeps } from '../../src/rollup/rollup';
import { allShards, TOTALS_SHARD } from '../../src/store/keys';
import type { UsageStore } from '../../src/store/types';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { aggregationWindow } from '../../src/windows';
import { faultyApi, itemSizes, lostAnswerApi, RecordingSink, startTestDynamo, storeFor, type TestDynamo } from '../support/store';

let db: TestDynamo;
beforeAll(async () => {
  db = await startTestDynamo();
});
afterAll(async () => {
  await db.stop();
});

const T0 = Date.parse('2026-11-22T10:00:00.000Z');
const WINDOW = aggregationWindow(60, 20); // 60 s windows, rolled 20 s after they close; runs commit within 10 s
const SHARDS = 4;
let seq = 0;

function message(id: string, events: Array<[event: string, user: string, at: number, props?: Record<string, unknown>]>): { messageId: string; body: string } {
  const body: QueueMessageBody = {
    v: 1,
    id,
    events: events.map(([event, user, at, props]): QueuedEvent => ({ uuid: `uuid-${++seq}`, event, distinct_id: user, properties: props ?? {}, timestamp: new Date(at).toISOString(), received_at: at })),
  };
  return { messageId: `sqs-${id}-${++seq}`, body: JSON.stringify(body) };
}

/** 20 messages, 200 calls over 5 users in the first two minutes after T0, plus an $identify. */
function workload(prefix: string, at = T0) {
  const msgs = [];
  for (let m = 0; m < 20; m++) {
    const evs: Array<[string, string, number]> = [];
    for (let i = 0; i < 10; i++) evs.push(['big_route', `user-${(m + i) % 5}`, at + ((m * 10 + i) % 2) * 60_000 + i * 1000]);
    if (m === 0) evs.push(['$identify', 'user-0', at]);
    msgs.push(message(`${prefix}-${m}`, evs));
  }
  return msgs;
}

interface Setup {
  table: string;
  store: UsageStore;
  sink: RecordingSink;
  agg: AggregatorDeps;
  roll: RollupDeps;
  clock: { now: number };
  advance(ms: number): void;
  total(o?: { distinctId?: string; granularity?: string; event?: string }): Promise<number>;
}

async function setup(o: { dimensions?: string[]; aggStore?: (s: UsageStore) => UsageStore } = {}): Promise<Setup> {
  const table = await db.newTable();
  const store = storeFor(db.api, table);
  const sink = new RecordingSink();
  // 5 s after the workload's two minutes: 10:01's calls are on time, 10:00's late (its window ended 65 s before).
  const clock = { now: T0 + 125_000 };
  const now = () => clock.now;
  const counting = { window: WINDOW, shards: SHARDS, dimensions: o.dimensions ?? [] };
  const agg: AggregatorDeps = { store, ...counting, staleMs: 30_000, now, concurrency: 8 };
  const roll: RollupDeps = { store, sink, ...counting, hourTtlDays: 14, now, concurrency: 8, owner: 'test-roller' };
  return {
    table,
    store,
    sink,
    agg,
    roll,
    clock,
    advance: (ms) => (clock.now += ms),
    async total(q = {}) {
      const a = await queryUsage(store, { event: q.event ?? 'big_route', distinctId: q.distinctId, granularity: q.granularity ?? 'day', from: String(T0 - 86_400_000), to: String(T0 + 86_400_000) }, counting, clock.now);
      return a.total;
    },
  };
}

const batchCalls = (sink: RecordingSink, event = 'big_route_batch') =>
  sink
    .unique()
    .filter((e) => e.event === event)
    .reduce((s, e) => s + (e.properties.calls as number), 0);

/** Rolls up everything (windows long closed) and delivers the outbox. */
async function rollAll(s: Setup) {
  s.advance(10 * 60_000);
  return runRollup(s.roll);
}

async function deltasLeft(s: Setup): Promise<number> {
  let n = 0;
  for (const shard of allShards(SHARDS)) n += (await s.store.allDeltas(shard)).length;
  return n;
}

describe('aggregator and roll-up (dynalite)', () => {
  it('counts every call once: fresh before the roll-up, in the counters after, batch events summing to it', async () => {
    const s = await setup();
    const r = await aggregateRecords(workload('a'), s.agg);
    expect(r).toMatchObject({ failures: [], counted: 20, duplicates: 0, calls: 200, committed: true });
    // Before any roll-up: the committed deltas answer.
    expect(await s.total()).toBe(200);
    expect(await s.total({ granularity: 'minute' })).toBe(200);
    let perUser = 0;
    for (let u = 0; u < 5; u++) perUser += await s.total({ distinctId: `user-${u}` });
    expect(perUser).toBe(200);

    const rolled = await rollAll(s);
    expect(rolled).toMatchObject({ calls: 400 /* user shards + totals shard */, aborted: 0, busy: 0 });
    expect(await deltasLeft(s)).toBe(0);
    for (const g of ['minute', 'hour', 'day', 'month']) expect(await s.total({ granularity: g })).toBe(200);
    const minutes = await queryUsage(s.store, { event: 'big_route', granularity: 'minute', from: String(T0), to: String(T0 + 180_000) }, s.agg, s.clock.now);
    expect(minutes.series.map((p) => [p.start, p.calls])).toEqual([
      ['2026-11-22T10:00:00.000Z', 100],
      ['2026-11-22T10:01:00.000Z', 100],
    ]);
    for (let u = 0; u < 5; u++) expect(await s.total({ distinctId: `user-${u}` })).toBe(40);

    // One batch event per (user, window): 5 users × 2 windows.
    expect(s.sink.events.filter((e) => e.event === 'big_route_batch')).toHaveLength(10);
    expect(batchCalls(s.sink)).toBe(200);
    expect(s.sink.events.filter((e) => e.event === '$identify')).toHaveLength(1);
    expect(await s.total({ event: '$identify' })).toBe(0);
    // Nothing left but counters, claims, markers and state: the outbox is empty.
    for (const shard of allShards(SHARDS)) expect(await s.store.listOutbox(shard, 10)).toEqual([]);
  });

  it('writes each counter item once per window however many runs touched it', async () => {
    const s = await setup();
    const msgs = workload('w');
    for (let i = 0; i < msgs.length; i += 2) await aggregateRecords(msgs.slice(i, i + 2), s.agg); // 10 runs
    const r = await rollAll(s);
    // Both minutes share an hour: per user, one hour item and one month item; across users the same two,
    // and the project's events index.
    expect(r.counterWrites).toBe(5 * 2 + 2 + 1);
    expect(r.units).toBeLessThanOrEqual(SHARDS + 1);
    expect(await s.total()).toBe(200);
  });

  it('acknowledges a redelivered batch as duplicates, before and after the roll-up', async () => {
    const s = await setup();
    const msgs = workload('b');
    await aggregateRecords(msgs, s.agg);
    expect(await aggregateRecords(msgs, s.agg)).toMatchObject({ failures: [], counted: 0, duplicates: 20, calls: 0 });
    await rollAll(s);
    expect(await aggregateRecords(msgs, s.agg)).toMatchObject({ failures: [], counted: 0, duplicates: 20 });
    expect(await s.total()).toBe(200);
    expect(batchCalls(s.sink)).toBe(200);
  });

  it('counts SQS duplicate copies inside one batch once', async () => {
    const s = await setup();
    const msgs = workload('c');
    const copies = [...msgs, ...msgs.slice(0, 5).map((m) => ({ ...m, messageId: `${m.messageId}-copy` }))];
    expect((await aggregateRecords(copies, s.agg)).failures).toEqual([]);
    await rollAll(s);
    expect(await s.total()).toBe(200);
  });

  it('counts a message whose claim put was applied but its answer lost (the retry fails its condition)', async () => {
    const s = await setup();
    const lossy = storeFor(lostAnswerApi(db.api, (n, i) => n === 'PutItemCommand' && String((i.Item as { pk: { S: string } }).pk.S).startsWith('m#')), s.table);
    const r = await aggregateRecords(workload('l'), { ...s.agg, store: lossy });
    expect(r).toMatchObject({ failures: [], counted: 20, calls: 200 });
    expect(await s.total()).toBe(200);
  });

  it('takes a stale claim over even when the steal was applied but its answer lost', async () => {
    const s = await setup();
    const msgs = workload('s');
    // A run that claims everything and dies before its deltas.
    let claims = 0;
    const dying = storeFor(faultyApi(db.api, (n) => n === 'PutItemCommand' && ++claims > 20), s.table);
    expect((await aggregateRecords(msgs, { ...s.agg, store: dying })).failures).toHaveLength(20);
    // Its abort never landed either (the same fault): the claims go stale.
    s.advance(31_000);
    const lossy = storeFor(lostAnswerApi(db.api, (n, i) => n === 'UpdateItemCommand' && String(i.UpdateExpression).startsWith('SET o =')), s.table);
    const r = await aggregateRecords(msgs, { ...s.agg, store: lossy });
    expect(r).toMatchObject({ failures: [], counted: 20 });
    await rollAll(s);
    expect(await s.total()).toBe(200);
  });

  // [where, which calls fail (after `skip` such calls succeeded)]
  it.each([
    ['after claiming, before any delta', (n: string, i: Record<string, unknown>) => n === 'PutItemCommand' && pkOf(i).startsWith('D#'), 0],
    ['between deltas', (n: string, i: Record<string, unknown>) => n === 'PutItemCommand' && pkOf(i).startsWith('D#'), 2],
    ['at the commit', (n: string, i: Record<string, unknown>) => n === 'PutItemCommand' && pkOf(i).startsWith('B#'), 0],
  ])('recovers exactly from an aggregator crash %s', async (_label, matches, skip) => {
    const s = await setup();
    let seen = 0;
    const crashing = storeFor(faultyApi(db.api, (n, i) => matches(n, i) && ++seen > skip), s.table);
    const msgs = workload('d');
    const first = await aggregateRecords(msgs, { ...s.agg, store: crashing });
    expect(first.failures).toHaveLength(20);
    expect(await s.total()).toBe(0); // nothing committed

    // Redelivered: the crashed run's abort landed (or not: then after the stale period) — counted once.
    s.advance(31_000);
    const retry = await aggregateRecords(msgs, s.agg);
    expect(retry).toMatchObject({ failures: [], counted: 20 });
    expect(await s.total()).toBe(200);
    await rollAll(s);
    expect(await s.total()).toBe(200);
    for (let u = 0; u < 5; u++) expect(await s.total({ distinctId: `user-${u}` })).toBe(40);
    expect(batchCalls(s.sink)).toBe(200);
    expect(await deltasLeft(s)).toBe(0);
  });

  it('a run that cannot commit in time aborts itself; a redelivery counts its messages at once', async () => {
    const s = await setup();
    const msgs = workload('t');
    let t = s.clock.now;
    const slow = await aggregateRecords(msgs, { ...s.agg, now: () => (t += 1_500) }); // the clock runs past half the grace
    expect(slow.committed).toBe(false);
    expect(slow.failures).toHaveLength(20);
    const retry = await aggregateRecords(msgs, s.agg); // no stale wait: the abort marker frees the claims
    expect(retry).toMatchObject({ counted: 20, failures: [] });
    await rollAll(s);
    expect(await s.total()).toBe(200);
  });

  it('the roll-up aborts a batch that never committed, and a commit arriving after loses', async () => {
    const s = await setup();
    // A run whose commit never lands: deltas exist, no marker.
    const noCommit = storeFor(faultyApi(db.api, (n, i) => n === 'PutItemCommand' && pkOf(i).startsWith('B#')), s.table);
    const msgs = workload('u');
    const r = await aggregateRecords(msgs, { ...s.agg, store: noCommit, newBatchId: () => 'batch-never' });
    expect(r.committed).toBe(false);
    expect(await s.total()).toBe(0); // uncommitted deltas never show in queries
    const rolled = await rollAll(s);
    expect(rolled.aborted).toBeGreaterThan(0);
    expect(await s.store.decide('batch-never', 'committed', s.clock.now)).toBe('aborted');
    expect(await s.total()).toBe(0);
    // The messages come back and count once.
    expect(await aggregateRecords(msgs, s.agg)).toMatchObject({ counted: 20 });
    await rollAll(s);
    expect(await s.total()).toBe(200);
  });

  // Crash the roll-up at each step; the next pass (after the lease expires) resumes it exactly.
  it.each([
    ['in the middle of the counter updates', (n: string, i: Record<string, unknown>) => n === 'UpdateItemCommand' && String(i.UpdateExpression).startsWith('ADD'), 3],
    ['before the outbox entries', (n: string, i: Record<string, unknown>) => n === 'PutItemCommand' && pkOf(i).startsWith('O#'), 0],
    ['before the cleaning', (n: string, i: Record<string, unknown>) => n === 'UpdateItemCommand' && hasValue(i, ':ph', 'cleaning'), 0],
    ['in the middle of the cleaning', (n: string) => n === 'DeleteItemCommand', 1],
    ['before it goes idle', (n: string, i: Record<string, unknown>) => n === 'UpdateItemCommand' && hasValue(i, ':ph', 'idle'), 0],
  ])('recovers exactly from a roll-up crash %s', async (_label, matches, skip) => {
    const s = await setup();
    await aggregateRecords(workload('r'), s.agg);
    let seen = 0;
    s.advance(10 * 60_000);
    const crashing = { ...s.roll, store: storeFor(faultyApi(db.api, (n, i) => matches(n, i) && ++seen > skip && seen <= skip + 1), s.table), owner: 'crasher' };
    await runRollup(crashing);
    // Mid-way, queries stay exact (the unit in progress is told apart item by item).
    expect(await s.total()).toBe(200);
    expect(await s.total({ granularity: 'minute' })).toBe(200);
    for (let u = 0; u < 5; u++) expect(await s.total({ distinctId: `user-${u}` })).toBe(40);
    // Another holder takes over once the crashed one's lease has run out.
    s.advance(61_000);
    await runRollup(s.roll);
    expect(await deltasLeft(s)).toBe(0);
    expect(await s.total()).toBe(200);
    for (const g of ['minute', 'hour', 'month']) expect(await s.total({ granularity: g })).toBe(200);
    for (let u = 0; u < 5; u++) expect(await s.total({ distinctId: `user-${u}` })).toBe(40);
    expect(batchCalls(s.sink)).toBe(200);
  });

  it('two roll-ups at once share the shards and count once', async () => {
    const s = await setup();
    for (let i = 0; i < 4; i++) await aggregateRecords(workload(`c${i}`), s.agg);
    s.advance(10 * 60_000);
    const [a, b] = await Promise.all([runRollup({ ...s.roll, owner: 'a' }), runRollup({ ...s.roll, owner: 'b' })]);
    expect(a.busy + b.busy).toBeGreaterThan(0);
    await runRollup(s.roll);
    expect(await s.total()).toBe(800);
    expect(batchCalls(s.sink)).toBe(800);
  });

  it('sends calls that arrive after their window was rolled as corrections, Σ calls exact', async () => {
    const s = await setup();
    s.clock.now = T0 + 65_000; // 10:00's window ended 5 s ago: its calls are on time, as are 10:01's
    await aggregateRecords(workload('e1'), s.agg);
    await rollAll(s);
    const before = s.sink.unique().filter((e) => e.event === 'big_route_batch');
    expect(before.filter((e) => e.properties.late)).toEqual([]);
    expect(before).toHaveLength(10);
    // Calls from the same two minutes, arriving 10 minutes later (a client's backlog).
    const late = workload('e2');
    const r = await aggregateRecords(late, s.agg);
    expect(r.counted).toBe(20);
    await rollAll(s);
    expect(await s.total()).toBe(400);
    const after = s.sink.unique().filter((e) => e.event === 'big_route_batch');
    const corrections = after.filter((e) => e.properties.late === true);
    expect(corrections).toHaveLength(10);
    expect(corrections.every((e) => ['2026-11-22T10:00:00.000Z', '2026-11-22T10:01:00.000Z'].includes(e.properties.window_start as string))).toBe(true);
    expect(after).toHaveLength(before.length + 10);
    expect(batchCalls(s.sink)).toBe(400);
  });

  it('keeps counting while PostHog is down, grows no item, then delivers every event exactly', async () => {
    const s = await setup();
    s.sink.down = true;
    await aggregateRecords(workload('p0'), s.agg);
    await rollAll(s);
    const sizes0 = await itemSizes(db.client, s.table);
    const largest0 = sizes0.filter((i) => !i.pk.startsWith('O#'))[0]!.bytes;
    // Ten more windows of traffic while PostHog stays down (shortened clocks: one run per window).
    for (let w = 1; w <= 10; w++) {
      s.clock.now = T0 + w * 60_000 + 125_000 + 10 * 60_000;
      await aggregateRecords(workload(`p${w}`, s.clock.now - 65_000), s.agg);
      await runRollup(s.roll);
    }
    const before = s.sink.requests;
    await rollAll(s);
    // A pass stops trying PostHog after two failures in a row, whatever the number of shards waiting.
    expect(s.sink.requests - before).toBeLessThanOrEqual(2);
    expect(await s.total({ granularity: 'month' })).toBe(11 * 200);
    expect(s.sink.events).toHaveLength(0);
    const sizes = await itemSizes(db.client, s.table);
    // The largest item is no larger (outbox entries aside: one per shard and window, each bounded).
    expect(sizes.filter((i) => !i.pk.startsWith('O#'))[0]!.bytes).toBeLessThanOrEqual(largest0 + 64);
    expect(Math.max(...sizes.filter((i) => i.pk.startsWith('O#')).map((i) => i.bytes))).toBeLessThan(64 * 1024);
    // No state item grew with the outage: shard states stay a few dozen bytes.
    expect(Math.max(...sizes.filter((i) => i.pk.startsWith('R#')).map((i) => i.bytes))).toBeLessThan(300);

    s.sink.down = false;
    for (let i = 0; i < 20 && batchCalls(s.sink) < 2200; i++) {
      s.advance(6 * 60_000); // past any backoff
      await runRollup({ ...s.roll, outboxLimit: 100 });
    }
    expect(batchCalls(s.sink)).toBe(2200);
    for (const shard of allShards(SHARDS)) expect(await s.store.listOutbox(shard, 10)).toEqual([]);
  });

  it('two projects: counts and PostHog destinations never mix; one project’s PostHog down holds back only its own events', async () => {
    const s = await setup();
    // Each message mixes three projects' calls (so outbox entries do too): a and b have their own PostHog,
    // c goes to the deployment's, d's destination cannot be read for a while.
    const sinks = { a: new RecordingSink(), b: new RecordingSink(), c: s.sink };
    let dReadable = false;
    const roll: RollupDeps = {
      ...s.roll,
      sinks: async (project) => {
        if (project === 'd' && !dReadable) throw new Error('project d could not be read');
        return project === 'd' ? s.sink : sinks[project as 'a' | 'b' | 'c'];
      },
    };
    const msgs = Array.from({ length: 10 }, (_, m) => {
      const body: QueueMessageBody = {
        v: 1,
        id: `mix-${m}`,
        events: ['a', 'a', 'b', 'c', 'd'].flatMap((project, i) =>
          Array.from({ length: 4 }, (_, u): QueuedEvent => ({ uuid: `mix-${m}-${i}-${u}`, event: 'big_route', distinct_id: `user-${u}`, properties: {}, timestamp: new Date(T0 + 60_000 + m * 1000).toISOString(), received_at: T0, project })),
        ),
      };
      return { messageId: `sqs-mix-${m}`, body: JSON.stringify(body) };
    });
    expect((await aggregateRecords(msgs, s.agg)).calls).toBe(200);
    sinks.b.down = true;
    s.advance(10 * 60_000);
    await runRollup(roll);
    const q = (project: string) => queryUsage(s.store, { event: 'big_route', granularity: 'day', from: String(T0 - 86_400_000), to: String(T0 + 86_400_000) }, s.agg, s.clock.now, project).then((a) => a.total);
    expect([await q('a'), await q('b'), await q('c'), await q('d'), await q('default')]).toEqual([80, 40, 40, 40, 0]);
    expect(batchCalls(sinks.a)).toBe(80);
    expect(batchCalls(sinks.b)).toBe(0);
    expect(batchCalls(s.sink)).toBe(40); // c's only: d waits, never sent elsewhere
    const mixed = (await Promise.all(allShards(SHARDS).map((sh) => s.store.listOutbox(sh, 10)))).flat();
    expect(mixed.length).toBeGreaterThan(0); // b's and d's events, kept

    // b's PostHog back, d readable: only what was left goes out, each to its own; a gets nothing twice.
    sinks.b.down = false;
    dReadable = true;
    const aRequests = sinks.a.requests;
    s.advance(6 * 60_000);
    await runRollup(roll);
    expect(sinks.a.requests).toBe(aRequests);
    expect(sinks.a.events).toHaveLength(sinks.a.unique().length);
    expect([batchCalls(sinks.a), batchCalls(sinks.b), batchCalls(s.sink)]).toEqual([80, 40, 80]);
    for (const e of sinks.b.events) expect(e.distinctId).toMatch(/^user-[0-3]$/);
    for (const shard of allShards(SHARDS)) expect(await s.store.listOutbox(shard, 10)).toEqual([]);
  });

  it('one project’s PostHog down for many windows: a pass tries it twice, and still delivers another project’s events behind it', async () => {
    const s = await setup();
    const sinks = { a: new RecordingSink(), b: new RecordingSink() };
    sinks.b.down = true;
    const roll: RollupDeps = { ...s.roll, sinks: async (project) => sinks[project as 'a' | 'b'] };
    // Five windows of b's traffic only, then one of a's: every shard's oldest entries are b's alone.
    for (let w = 0; w < 6; w++) {
      const project = w < 5 ? 'b' : 'a';
      s.clock.now = T0 + (w + 1) * 60_000 + 5_000;
      const body: QueueMessageBody = {
        v: 1,
        id: `w-${w}`,
        events: Array.from({ length: 40 }, (_, i): QueuedEvent => ({ uuid: `w-${w}-${i}`, event: 'big_route', distinct_id: `${project}-user-${i % 8}`, properties: {}, timestamp: new Date(T0 + w * 60_000 + i * 1000).toISOString(), received_at: s.clock.now, project })),
      };
      expect((await aggregateRecords([{ messageId: `sqs-w-${w}`, body: JSON.stringify(body) }], s.agg)).calls).toBe(40);
    }
    s.advance(10 * 60_000);
    await runRollup(roll);
    expect(sinks.b.requests).toBeLessThanOrEqual(2);
    expect(batchCalls(sinks.a)).toBe(40);
    expect(batchCalls(sinks.b)).toBe(0);
    sinks.b.down = false;
    s.advance(6 * 60_000);
    await runRollup(roll);
    expect(batchCalls(sinks.b)).toBe(200);
    expect(sinks.a.events).toHaveLength(sinks.a.unique().length);
    for (const shard of allShards(SHARDS)) expect(await s.store.listOutbox(shard, 10)).toEqual([]);
  });

  it('isolates an event PostHog refuses: everything else is delivered, the refused one kept aside', async () => {
    const s = await setup();
    s.sink.refuse = (e) => e.distinctId === 'user-3';
    await aggregateRecords(workload('x'), s.agg);
    const r = await rollAll(s);
    expect(r.rejected).toBe(2); // user-3's two windows
    expect(batchCalls(s.sink)).toBe(160);
    const kept = (await Promise.all(allShards(SHARDS).map((sh) => s.store.listRejected(sh, 10)))).flat();
    expect(kept.map((k) => (k.event as { event: { distinctId: string } }).event.distinctId)).toEqual(['user-3', 'user-3']);
    expect(kept[0]!.reason).toContain('400');
    for (const shard of allShards(SHARDS)) expect(await s.store.listOutbox(shard, 10)).toEqual([]);
  });

  it('counts nothing for unreadable or unstorable messages, which go to the DLQ', async () => {
    const s = await setup();
    const poisoned = message('poison', [['e', 'u', T0]]);
    const body = JSON.parse(poisoned.body) as QueueMessageBody;
    body.events[0]!.timestamp = '+275760-09-13T00:00:00.000Z';
    const msgs = [...workload('g'), { messageId: 'garbage', body: 'not json' }, { messageId: 'wrong', body: '{"v":2}' }, { messageId: 'future', body: JSON.stringify(body) }];
    const r = await aggregateRecords(msgs, s.agg);
    expect(r.failures.sort()).toEqual(['future', 'garbage', 'wrong']);
    await rollAll(s);
    expect(await s.total()).toBe(200);
  });
});

describe('queries', () => {
  it('breaks a month down by user, largest first, paginated, as JSON and CSV', async () => {
    const s = await setup();
    const msgs = [];
    for (let u = 0; u < 30; u++) msgs.push(message(`bd-${u}`, Array.from({ length: u + 1 }, (_, i): [string, string, number] => ['api_call', `cust-${u}`, T0 + i * 100])));
    msgs.push(message('bd-odd', [['api_call', 'a,b "c"', T0], ['api_call', '=cmd()', T0]]));
    await aggregateRecords(msgs.slice(0, 20), s.agg);
    await rollAll(s);
    await aggregateRecords(msgs.slice(20), s.agg); // the rest is not rolled up yet: still counted
    const q = { event: 'api_call', granularity: 'month', from: '2026-11-01T00:00:00Z', to: '2026-11-30T00:00:00Z', limit: '10' };
    const p1 = await queryBreakdown(s.store, q, s.agg, s.clock.now);
    expect(p1).toMatchObject({ from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', rows: 32, total: (30 * 31) / 2 + 2 });
    expect(p1.users.map((u) => [u.distinctId, u.calls])).toEqual(Array.from({ length: 10 }, (_, i) => [`cust-${29 - i}`, 30 - i]));
    const all = [...p1.users];
    let cursor = p1.nextCursor;
    while (cursor) {
      const p = await queryBreakdown(s.store, { ...q, cursor }, s.agg, s.clock.now);
      all.push(...p.users);
      cursor = p.nextCursor;
    }
    expect(all).toHaveLength(32);
    expect(new Set(all.map((u) => u.distinctId)).size).toBe(32);
    const csv = breakdownCsv(await queryBreakdown(s.store, { ...q, limit: '100' }, s.agg, s.clock.now));
    expect(csv.split('\r\n')[0]).toBe('distinct_id,calls');
    expect(csv).toContain('cust-29,30\r\n');
    expect(csv).toContain('"a,b ""c""",1\r\n');
    expect(csv).toContain(`"'=cmd()",1\r\n`);
    // Day ranges inside a month read the day slots.
    const day = await queryBreakdown(s.store, { event: 'api_call', granularity: 'day', from: '2026-11-23T00:00:00Z', to: '2026-11-30T00:00:00Z' }, s.agg, s.clock.now);
    expect(day.total).toBe(0);
    // A cursor of another query is refused.
    await expect(queryBreakdown(s.store, { ...q, event: 'other', cursor: p1.nextCursor! }, s.agg, s.clock.now)).rejects.toThrow('invalid query');
  });

  it('splits counters, events and the breakdown by dimensions, and filters by them', async () => {
    const s = await setup({ dimensions: ['route', 'status'] });
    const evs: Array<[string, string, number, Record<string, unknown>]> = [];
    for (let i = 0; i < 30; i++) evs.push(['api_call', `u${i % 3}`, T0 + i * 1000, { route: i % 2 ? '/big/:id' : '/small', status: i % 5 ? 200 : 500 }]);
    await aggregateRecords([message('dims', evs)], s.agg);
    const q = (p: Record<string, string>) => queryUsage(s.store, { event: 'api_call', granularity: 'day', from: String(T0 - 86_400_000), to: String(T0 + 86_400_000), ...p }, s.agg, s.clock.now).then((a) => a.total);
    const check = async () => {
      expect(await q({})).toBe(30);
      expect(await q({ 'dim.route': '/big/:id' })).toBe(15);
      expect(await q({ 'dim.route': '/big/:id', 'dim.status': '500' })).toBe(3);
      expect(await q({ distinctId: 'u1', 'dim.route': '/small' })).toBe(5);
      expect(await q({ distinctId: 'u1', granularity: 'minute', 'dim.status': '200' })).toBe(8);
    };
    await check(); // fresh
    await rollAll(s);
    await check(); // rolled up
    const by = await queryBreakdown(s.store, { event: 'api_call', groupBy: 'route', 'dim.status': '200' }, s.agg, s.clock.now);
    expect(by.users.map((u) => [u.distinctId, u.route, u.calls]).sort()).toEqual([
      ['u0', '/big/:id', 4],
      ['u0', '/small', 4],
      ['u1', '/big/:id', 4],
      ['u1', '/small', 4],
      ['u2', '/big/:id', 4],
      ['u2', '/small', 4],
    ]);
    const e = s.sink.unique().find((x) => x.event === 'api_call_batch' && x.distinctId === 'u0' && x.properties.route === '/small' && x.properties.status === '500');
    expect(e?.properties.calls).toBe(1);
    await expect(queryUsage(s.store, { event: 'api_call', 'dim.nope': 'x' }, s.agg)).rejects.toMatchObject({ details: [{ path: 'dim.nope' }] });
  });

  it('lists the events of a month with their calls, fresh and rolled up', async () => {
    const s = await setup();
    await aggregateRecords([message('extra', [['search', 'u', T0], ['search', 'u', T0], ['export#csv', 'v', T0]]), ...workload('ev')], s.agg);
    const list = () => queryEvents(s.store, { from: '2026-11-01' }, s.clock.now).then((a) => a.events);
    const want = [
      { event: 'big_route', calls: 200 },
      { event: 'search', calls: 2 },
      { event: 'export#csv', calls: 1 },
    ];
    expect(await list()).toEqual(want);
    await rollAll(s);
    expect(await list()).toEqual(want);
    expect((await queryEvents(s.store, { from: '2026-12-01', to: '2026-12-31' }, s.clock.now)).events).toEqual([]);
  });

  it('reads the totals shard state for totals and the user shard for one user', async () => {
    const s = await setup();
    await aggregateRecords(workload('q'), s.agg);
    const st = await s.store.getState(TOTALS_SHARD);
    expect(st).toMatchObject({ seq: 0, phase: 'idle' });
    await rollAll(s);
    expect((await s.store.getState(TOTALS_SHARD)).seq).toBe(1);
  });
});

function pkOf(input: Record<string, unknown>): string {
  const item = input.Item as { pk?: { S?: string } } | undefined;
  return item?.pk?.S ?? '';
}
function hasValue(input: Record<string, unknown>, name: string, value: string): boolean {
  return (input.ExpressionAttributeValues as Record<string, { S?: string }> | undefined)?.[name]?.S === value;
}
