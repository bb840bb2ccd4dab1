/**
 * Benchmark 3: counting (aggregator runs and the roll-up) against dynalite (DynamoDB wire protocol)
 * and the PostHog stand-in over HTTP through posthog-node, both in child processes.
 *
 * **One window of traffic, as at 1M calls/minute from 10,000 users, scaled 1:20**: 50,000 calls from 500
 * users (Zipf 1.1) in one 60 s window — 100 calls per user per window, the ratio that decides PostHog
 * events and counter writes per call. Scenario `single`: one call per message (the worst case: a claim per
 * call), in aggregator runs of ≤ 10,000 messages spread over the window; `batched`: messages of 100 calls.
 * 0.02 % of calls arrive with a timestamp 1–10 minutes old (a client retrying after an outage): each
 * becomes a correction event, one per late (user, window) — the figure moves with that assumption. Then the window is rolled up, as the scheduled roll-up does, and its events delivered.
 * Every DynamoDB request is counted by kind (claims, deltas, markers, counters, outbox, state) with write
 * units from item sizes (an update is billed on the larger item size) and read units from answer sizes.
 *
 * **Roll-up capacity**: synthetic deltas of many active (event, user) pairs in one window, rolled up;
 * throughput against dynalite, and the roll-up's CPU per counter write, from which the parallelism for
 * 100,000 active pairs per minute in AWS follows.
 *
 * **PostHog down for 10 minutes** (virtual clock, 10 s windows, one aggregator run and one roll-up per
 * window): counting time per window before and during the outage, the largest item before and after,
 * and, once PostHog is back, whether every event arrives with Σ calls exact.
 *
 * **Skew**: for 100 … 100,000 users at 1M calls/minute, the active pairs per window and what they cost
 * (pure computation).
 */
import { ensureTable } from '../local/emulators';
import { aggregateRecords, type QueueRecord } from '../src/aggregate/aggregator';
import { encodeDelta } from '../src/aggregate/deltas';
import type { Row } from '../src/aggregate/rows';
import { packMessages } from '../src/queue/pack';
import { runRollup } from '../src/rollup/rollup';
import { createDynamoClient } from '../src/runtime/aws';
import { createDynamoApi } from '../src/runtime/store';
import { PostHogNodeSink } from '../src/sink/posthog';
import { DynamoUsageStore } from '../src/store/dynamo';
import type { DynamoApi } from '../src/store/dynamo-api';
import { SdkDynamoApi } from '../src/store/dynamo-sdk';
import { allShards, userShard } from '../src/store/keys';
import type { QueuedEvent } from '../src/types';
import { uuidv7 } from '../src/util/ids';
import { aggregationWindow, type AggregationWindow } from '../src/windows';
import { cpuMicros, progress, rng, round, spawnTs, traffic, zipf, type Child } from './lib';
import type { PosthogStats } from './servers';

export interface WriteUnits {
  claims: number;
  deltas: number;
  markers: number;
  counters: number;
  outbox: number;
  state: number;
  other: number;
}

export interface AggregatorRow {
  /** `naive-traffic`: the naive benchmark's traffic (1,000 calls/s from its pool of bodies), for the side-by-side. */
  scenario: 'single' | 'batched' | 'naive-traffic';
  /** The DynamoDB client under the store: `fast` (the SDK-free JSON client, as deployed) or `sdk`. */
  client: 'fast' | 'sdk';
  users: number;
  calls: number;
  messages: number;
  /** Aggregator runs (invocations) for the window. */
  runs: number;
  /** Active (event, user) pairs in the window. */
  pairs: number;
  /** Mean SQS message body, bytes. */
  avgBodyBytes: number;
  /** Mean size of a message's claim item, incl. DynamoDB's 100 bytes per item (what storage bills). */
  claimItemBytes: number;
  /** Aggregator runs: calls/s and CPU per call in this process (parse, claims, deltas, signing). */
  eventsPerSecond: number;
  cpuUsPerCall: number;
  /** Roll-up of the window (counters, outbox, delivery): wall ms and CPU per call. */
  rollupMs: number;
  rollupCpuUsPerCall: number;
  dynaliteCpuMs: number;
  dynamoRequests: Record<string, number>;
  /** Per 1M calls. */
  dynamoWritesPer1M: number;
  writeUnitsPer1M: number;
  writeUnitsByKindPer1M: WriteUnits;
  readUnitsPer1M: number;
  dynamoReadsPer1M: number;
  posthogEventsPer1M: number;
  posthogRequestsPer1M: number;
  /** Corrections (late calls' events) as a share of all batch events, %. */
  correctionsPercent: number;
  /** Σ `calls` over the batch events PostHog received (must equal `calls`). */
  posthogCalls: number;
  storedTotal: number;
}

export interface RollupCapacityRow {
  pairs: number;
  counterWrites: number;
  wallMs: number;
  writesPerSecond: number;
  cpuUsPerWrite: number;
  /** At 100,000 active pairs per minute: writes/s needed, and vCPU of roll-up CPU that takes. */
  neededWritesPerSecond: number;
  neededVcpu: number;
  /** In AWS at 5 ms per write, 32 in flight per shard: shards needed for the writes alone. */
  neededShards: number;
}

export interface OutageRow {
  windowSeconds: number;
  windows: { before: number; down: number };
  callsPerWindow: number;
  /** Mean wall ms of an aggregator run before / during the outage (counting rate). */
  aggregatorMsBefore: number;
  aggregatorMsDown: number;
  /** Mean wall ms of a roll-up pass before / during (it also tries PostHog). */
  rollupMsBefore: number;
  rollupMsDown: number;
  /** Largest item outside the outbox, bytes, before / after the outage; largest outbox entry. */
  largestItemBefore: number;
  largestItemAfter: number;
  largestOutboxEntry: number;
  outboxEntriesAtEnd: number;
  /** After PostHog came back: passes until the outbox was empty, and Σ calls delivered vs stored. */
  recoveryPasses: number;
  deliveredCalls: number;
  storedCalls: number;
}

export interface SkewRow {
  users: number;
  callsPerWindow: number;
  /** Distinct (event, user) pairs in one 60 s window at 1M calls/minute. */
  pairs: number;
  posthogEventsPer1M: number;
  /** Counter writes per 1M calls: two per active pair (hour and month items) plus totals. */
  counterWritesPer1M: number;
  claimsPer1M: number;
}

export interface CountingResults {
  rows: AggregatorRow[];
  capacity: RollupCapacityRow;
  outage: OutageRow;
  skew: SkewRow[];
}

/** Approximate DynamoDB item size: attribute names + values. */
function itemBytes(item: Record<string, Record<string, unknown>> | undefined): number {
  if (!item) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += k.length;
    const val = v.S ?? v.N ?? v.B;
    if (typeof val === 'string') n += Buffer.byteLength(val);
    else if (val instanceof Uint8Array) n += val.length;
    else if (v.SS) n += (v.SS as string[]).reduce((s, x) => s + x.length, 0);
    else n += 16;
  }
  return n + 100; // DynamoDB adds per-item overhead
}

const kindOf = (pk: string): keyof WriteUnits =>
  pk.startsWith('m#') ? 'claims' : pk.startsWith('D#') ? 'deltas' : pk.startsWith('B#') ? 'markers' : /^(UH|UM|TH|TM)#/.test(pk) ? 'counters' : pk.startsWith('O#') || pk.startsWith('X#') ? 'outbox' : pk.startsWith('R#') ? 'state' : 'other';

/** Counts requests and read/write units of everything that goes through the API. */
class Meter {
  requests: Record<string, number> = {};
  writeUnits: WriteUnits = { claims: 0, deltas: 0, markers: 0, counters: 0, outbox: 0, state: 0, other: 0 };
  readUnits = 0;
  reads = 0;
  /** Claim items put, and their bytes. */
  claims = { items: 0, bytes: 0 };
  private sizes = new Map<string, number>();

  reset(): void {
    this.requests = {};
    this.writeUnits = { claims: 0, deltas: 0, markers: 0, counters: 0, outbox: 0, state: 0, other: 0 };
    this.readUnits = 0;
    this.reads = 0;
    this.claims = { items: 0, bytes: 0 };
  }

  wrap(api: DynamoApi): DynamoApi {
    const count = (op: string) => (this.requests[op] = (this.requests[op] ?? 0) + 1);
    const wu = (pk: string, bytes: number) => (this.writeUnits[kindOf(pk)] += Math.max(1, Math.ceil(bytes / 1024)));
    const ru = (items: Array<Record<string, Record<string, unknown>>>) => {
      const bytes = items.reduce((s, i) => s + itemBytes(i), 0);
      this.readUnits += Math.max(1, Math.ceil(bytes / 4096));
      this.reads++;
    };
    return {
      putItem: async (i) => {
        count('PutItem');
        const pk = i.Item!.pk!.S!;
        const bytes = itemBytes(i.Item as never);
        this.sizes.set(`${pk}\u0000${i.Item!.sk!.S!}`, bytes);
        wu(pk, bytes);
        if (kindOf(pk) === 'claims') {
          this.claims.items++;
          this.claims.bytes += bytes;
        }
        return api.putItem(i);
      },
      updateItem: async (i) => {
        count('UpdateItem');
        const r = await api.updateItem({ ...i, ReturnValues: i.ReturnValues ?? 'ALL_NEW' }).catch((err: unknown) => {
          wu(i.Key!.pk!.S!, this.sizes.get(`${i.Key!.pk!.S!}\u0000${i.Key!.sk!.S!}`) ?? 200); // a failed condition still costs a write
          throw err;
        });
        const k = `${i.Key!.pk!.S!}\u0000${i.Key!.sk!.S!}`;
        const after = itemBytes(r.Attributes as never);
        wu(i.Key!.pk!.S!, Math.max(after, this.sizes.get(k) ?? 0));
        this.sizes.set(k, after);
        return i.ReturnValues ? r : {};
      },
      deleteItem: async (i) => {
        count('DeleteItem');
        const k = `${i.Key!.pk!.S!}\u0000${i.Key!.sk!.S!}`;
        wu(i.Key!.pk!.S!, this.sizes.get(k) ?? 200);
        this.sizes.delete(k);
        return api.deleteItem(i);
      },
      getItem: async (i) => {
        count('GetItem');
        const r = await api.getItem(i);
        ru(r.Item ? [r.Item as never] : []);
        return r;
      },
      query: async (i) => {
        count('Query');
        const r = await api.query(i);
        ru((r.Items ?? []) as never);
        return r;
      },
      batchGetItem: async (i) => {
        count('BatchGetItem');
        const r = await api.batchGetItem(i);
        for (const items of Object.values(r.Responses ?? {})) for (const it of items) ru([it as never]);
        return r;
      },
    };
  }
}

const T_WINDOW = Date.parse('2026-11-23T12:00:00.000Z');

interface Traffic {
  records: QueueRecord[];
  /** Start time of each run's batch of records (virtual clock). */
  runs: Array<{ at: number; records: QueueRecord[] }>;
  calls: number;
  pairs: number;
  avgBodyBytes: number;
}

/** The distinct ids of the naive benchmark (bench/naive.ts): 4,000 bodies drawn from 3,000 users, cycled. */
function naiveUsers(): () => string {
  const t = traffic(31, 3000);
  const pool = Array.from({ length: 4000 }, () => {
    const u = t.user();
    t.route();
    return u;
  });
  let i = 0;
  return () => pool[i++ % pool.length]!;
}

/** One window of traffic, cut into aggregator runs of ≤ 10,000 messages spread over the window. */
function windowTraffic(scenario: AggregatorRow['scenario'], users: number, calls: number, seed = 7): Traffic {
  const r = rng(seed);
  const zu = zipf(users, 1.1, r);
  const u = scenario === 'naive-traffic' ? naiveUsers() : () => `user-${zu()}`;
  const per = scenario === 'batched' ? 100 : 1;
  const events: QueuedEvent[] = [];
  const pairs = new Set<string>();
  for (let i = 0; i < calls; i++) {
    const late = scenario !== 'naive-traffic' && r() < 0.0002;
    const ts = late ? T_WINDOW - 60_000 - Math.floor(r() * 540_000) : T_WINDOW + Math.floor(r() * 60_000);
    const distinct_id = u();
    if (!late) pairs.add(distinct_id);
    events.push({ uuid: uuidv7(ts), event: 'api_call', distinct_id, properties: { route: '/v1/items/:id', status: 200, duration_ms: 12 }, timestamp: new Date(ts).toISOString(), ip: '198.51.100.7', received_at: ts });
  }
  // Arrival order: by timestamp, late ones anywhere.
  events.sort((a, b) => a.received_at - b.received_at);
  const records: QueueRecord[] = [];
  let bytes = 0;
  for (let i = 0; i < events.length; i += per) {
    for (const m of packMessages(events.slice(i, i + per), 1024 * 1024)) {
      records.push({ messageId: `sqs-${scenario}-${records.length}`, body: m.body });
      bytes += Buffer.byteLength(m.body);
    }
  }
  // Runs: at least 5 over the window (a batching window of ~12 s at this volume), ≤ 10,000 messages each.
  const nRuns = Math.max(5, Math.ceil(records.length / 10_000));
  const runs: Traffic['runs'] = [];
  for (let k = 0; k < nRuns; k++) {
    const part = records.slice(Math.floor((records.length * k) / nRuns), Math.floor((records.length * (k + 1)) / nRuns));
    runs.push({ at: T_WINDOW + Math.round((60_000 * (k + 1)) / nRuns) + 2000, records: part });
  }
  return { records, runs, calls, pairs: pairs.size, avgBodyBytes: round(bytes / records.length, 0) };
}

async function posthog(ph: Child): Promise<PosthogStats> {
  return ph.call<PosthogStats>('posthog-stats');
}

export async function runCountingBench(o: { quick: boolean }): Promise<CountingResults> {
  const dyn = spawnTs('bench/servers.ts', ['--dynamo'], { label: 'dynalite' });
  const ph = spawnTs('bench/servers.ts', ['--posthog'], { label: 'posthog' });
  try {
    const [{ endpoint: dynamoEndpoint }, { endpoint: posthogUrl }] = await Promise.all([
      dyn.waitFor<{ endpoint: string }>((m) => m.ready === true),
      ph.waitFor<{ endpoint: string }>((m) => m.ready === true),
    ]);
    const aws = { AWS_REGION: 'us-east-1', TALLY_DYNAMODB_ENDPOINT: dynamoEndpoint };
    const client = createDynamoClient(aws);
    const json = createDynamoApi(aws);
    const meter = new Meter();
    const apis = { fast: meter.wrap(json), sdk: meter.wrap(new SdkDynamoApi(client)) };
    const sink = new PostHogNodeSink({ apiKey: 'phc_bench', host: posthogUrl });
    const window = aggregationWindow(60, 60);
    let tables = 0;
    const newStore = async (api: DynamoApi): Promise<DynamoUsageStore> => {
      const table = `bench-counting-${tables++}`;
      await ensureTable(client, table);
      return new DynamoUsageStore(api, { tableName: table, concurrency: 32 });
    };
    const dynCpu = async () => {
      const c = (await dyn.call<{ cpu: NodeJS.CpuUsage }>('cpu')).cpu;
      return c.user + c.system;
    };

    // ── one window of traffic ──────────────────────────────────────────────────────────────────
    const scale = o.quick ? { users: 20, calls: 2_000 } : { users: 500, calls: 50_000 };
    const plan: Array<[AggregatorRow['scenario'], 'fast' | 'sdk', number, number]> = o.quick
      ? [
          ['single', 'fast', scale.users, scale.calls],
          ['batched', 'fast', scale.users, scale.calls],
          ['naive-traffic', 'fast', 3000, 3_000],
        ]
      : [
          ['single', 'fast', scale.users, scale.calls],
          ['batched', 'fast', scale.users, scale.calls],
          // The naive benchmark's traffic for one 60 s window at its 1,000 calls/s.
          ['naive-traffic', 'fast', 3000, 60_000],
          // The SDK v3 DynamoDB client on a fifth of the traffic, same ratio: what the JSON client saves.
          ['single', 'sdk', scale.users / 5, scale.calls / 5],
        ];
    const rows: AggregatorRow[] = [];
    for (const [scenario, clientKind, users, calls] of plan) {
      const store = await newStore(apis[clientKind]);
      const t = windowTraffic(scenario, users, calls);
      progress(`counting ${scenario} (${clientKind} DynamoDB client): ${t.records.length} messages, ${t.calls} calls from ${users} users in one 60 s window (${t.pairs} active pairs), ${t.runs.length} runs…`);
      meter.reset();
      await ph.call('posthog-reset');
      let clock = 0;
      const deps = { store, window, shards: 8, dimensions: [] as string[], staleMs: 120_000, now: () => clock };
      const d0 = await dynCpu();
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      let counted = 0;
      for (const run of t.runs) {
        clock = run.at;
        const rep = await aggregateRecords(run.records, deps);
        if (rep.failures.length || !rep.committed) throw new Error(`aggregator run incomplete: ${JSON.stringify({ ...rep, failures: rep.failures.length })}`);
        counted += rep.calls;
      }
      const aggWall = performance.now() - w0;
      const aggCpu = cpuMicros(c0);
      if (counted !== t.calls) throw new Error(`counted ${counted} of ${t.calls}`);
      // The roll-up, once the window and its grace are over (and a late window before it).
      clock = T_WINDOW + 60_000 + window.graceMs + 10_000;
      const c1 = process.cpuUsage();
      const r0 = performance.now();
      const rolled = await runRollup({ store, sink, window, shards: 8, dimensions: [], hourTtlDays: 14, now: () => clock, outboxLimit: 100 });
      const rollupMs = performance.now() - r0;
      const rollupCpu = cpuMicros(c1);
      const d1 = await dynCpu();
      if (rolled.failed > 0) throw new Error(`PostHog delivery failed in the bench: ${JSON.stringify(rolled)}`);
      const stats = await posthog(ph);
      const batch = stats.byEvent.api_call_batch ?? { events: 0, calls: 0, count: 0 };
      const stored = (await store.queryRange('TM#default#api_call', '2026', '2027')).reduce((s, i) => s + (i.values.n ?? 0), 0);
      const per1M = (v: number) => round((v / t.calls) * 1e6, 0);
      const writes = (meter.requests.PutItem ?? 0) + (meter.requests.UpdateItem ?? 0) + (meter.requests.DeleteItem ?? 0);
      const wuTotal = Object.values(meter.writeUnits).reduce((s, v) => s + v, 0);
      const byKind = Object.fromEntries(Object.entries(meter.writeUnits).map(([k, v]) => [k, per1M(v)])) as unknown as WriteUnits;
      const reads = (meter.requests.GetItem ?? 0) + (meter.requests.Query ?? 0) + (meter.requests.BatchGetItem ?? 0);
      const row: AggregatorRow = {
        scenario,
        client: clientKind,
        users,
        calls: t.calls,
        messages: t.records.length,
        runs: t.runs.length,
        pairs: t.pairs,
        avgBodyBytes: t.avgBodyBytes,
        claimItemBytes: round(meter.claims.bytes / Math.max(1, meter.claims.items), 0),
        eventsPerSecond: round((t.calls / aggWall) * 1000, 0),
        cpuUsPerCall: round(aggCpu / t.calls, 1),
        rollupMs: round(rollupMs, 0),
        rollupCpuUsPerCall: round(rollupCpu / t.calls, 2),
        dynaliteCpuMs: round((d1 - d0) / 1000, 0),
        dynamoRequests: { ...meter.requests },
        dynamoWritesPer1M: per1M(writes),
        writeUnitsPer1M: per1M(wuTotal),
        writeUnitsByKindPer1M: byKind,
        readUnitsPer1M: per1M(meter.readUnits),
        dynamoReadsPer1M: per1M(reads),
        posthogEventsPer1M: per1M(batch.events),
        posthogRequestsPer1M: per1M(stats.requests),
        correctionsPercent: 0,
        posthogCalls: batch.calls,
        storedTotal: stored,
      };
      const lateEvents = await ph.call<{ late: number }>('posthog-late', { event: 'api_call_batch' });
      row.correctionsPercent = round((100 * lateEvents.late) / Math.max(1, batch.events), 2);
      if (row.posthogCalls !== t.calls || stored !== t.calls) throw new Error(`PostHog batch events carry ${row.posthogCalls} calls and the counters ${stored}, expected ${t.calls}`);
      rows.push(row);
      progress(
        `counting ${scenario} (${clientKind}): ${row.eventsPerSecond} calls/s, ${row.cpuUsPerCall} µs CPU/call; roll-up ${row.rollupMs} ms; per 1M calls: ${row.writeUnitsPer1M} WCU ` +
          `(claims ${byKind.claims}, deltas ${byKind.deltas}, markers ${byKind.markers}, counters ${byKind.counters}, outbox ${byKind.outbox}, state ${byKind.state}), ` +
          `${row.readUnitsPer1M} RCU, ${row.posthogEventsPer1M} PostHog events (${row.correctionsPercent} % corrections) in ${row.posthogRequestsPer1M} requests`,
      );
    }

    // ── roll-up capacity ───────────────────────────────────────────────────────────────────────
    const capPairs = o.quick ? 500 : 20_000;
    const capacity = await (async (): Promise<RollupCapacityRow> => {
      const store = await newStore(json);
      const batches = 10;
      progress(`roll-up capacity: ${capPairs} active pairs in one window, deltas of ${batches} runs…`);
      for (let b = 0; b < batches; b++) {
        const batchId = `cap-${b}`;
        const byShard = new Map<string, Row[]>();
        for (let p = b; p < capPairs; p += batches) {
          const distinctId = `cap-user-${p}`;
          const shard = userShard('default', 'api_call', distinctId, 8);
          (byShard.get(shard) ?? byShard.set(shard, []).get(shard)!).push({ project: 'default', event: 'api_call', distinctId, slot: T_WINDOW, calls: 1 + (p % 7) });
        }
        for (const [shard, rs] of byShard) await store.putDelta({ shard, window: T_WINDOW, batchId, part: 0, data: encodeDelta(T_WINDOW, rs, []), calls: 0 }, T_WINDOW);
        await store.decide(batchId, 'committed', T_WINDOW);
      }
      const clock = T_WINDOW + 60_000 + window.graceMs + 10_000;
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      const r = await runRollup({ store, window, shards: 8, dimensions: [], hourTtlDays: 14, now: () => clock, shardConcurrency: 8 });
      const wallMs = performance.now() - w0;
      const cpu = cpuMicros(c0);
      const neededWritesPerSecond = round((100_000 * 2) / 60, 0);
      const cpuUsPerWrite = round(cpu / Math.max(1, r.counterWrites), 1);
      return {
        pairs: capPairs,
        counterWrites: r.counterWrites,
        wallMs: round(wallMs, 0),
        writesPerSecond: round((r.counterWrites / wallMs) * 1000, 0),
        cpuUsPerWrite,
        neededWritesPerSecond,
        neededVcpu: round((neededWritesPerSecond * cpuUsPerWrite) / 1e6, 2), // the rollup function has 1 vCPU (1,769 MB)
        neededShards: Math.max(1, Math.ceil(neededWritesPerSecond / (32 / 0.005))),
      };
    })();
    progress(`roll-up capacity: ${capacity.counterWrites} counter writes in ${capacity.wallMs} ms (${capacity.writesPerSecond}/s against dynalite), ${capacity.cpuUsPerWrite} µs CPU per write → 100,000 pairs/minute need ${capacity.neededWritesPerSecond} writes/s, ${capacity.neededVcpu} vCPU, ${capacity.neededShards} shard(s) at 5 ms × 32 in flight`);

    // ── PostHog down for 10 minutes ───────────────────────────────────────────────────────────
    const outage = await (async (): Promise<OutageRow> => {
      const store = await newStore(json);
      const w: AggregationWindow = aggregationWindow(10, 4);
      const before = o.quick ? 2 : 6;
      const down = o.quick ? 6 : 60; // 60 windows of 10 s: 10 minutes
      const per = o.quick ? 50 : 300;
      const users = 40;
      const r = rng(11);
      const uz = zipf(users, 1.1, r);
      const T = T_WINDOW + 3_600_000;
      let clock = T;
      const deps = { store, window: w, shards: 8, dimensions: [] as string[], staleMs: 60_000, now: () => clock };
      const rollDeps = { store, sink, window: w, shards: 8, dimensions: [] as string[], hourTtlDays: 14, now: () => clock, outboxLimit: 50 };
      const agg: number[][] = [[], []];
      const roll: number[][] = [[], []];
      let largestBefore = 0;
      await ph.call('posthog-reset');
      progress(`PostHog outage: ${before} windows up, ${down} windows of 10 s down (${(down * 10) / 60} minutes of virtual time), ${per} calls per window…`);
      for (let k = 0; k < before + down; k++) {
        const isDown = k >= before;
        if (k === before) {
          largestBefore = await largestItem(client, store.o.tableName, false);
          await ph.call('posthog-down', { mode: '503' });
        }
        const events: QueuedEvent[] = Array.from({ length: per }, (_, i) => {
          const ts = T + k * 10_000 + Math.floor((i * 10_000) / per);
          return { uuid: uuidv7(ts), event: 'api_call', distinct_id: `user-${uz()}`, properties: {}, timestamp: new Date(ts).toISOString(), received_at: ts };
        });
        const records = events.flatMap((e, i) => packMessages([e], 1024 * 1024).map((m) => ({ messageId: `out-${k}-${i}`, body: m.body })));
        clock = T + (k + 1) * 10_000 + 1000;
        const a0 = performance.now();
        const rep = await aggregateRecords(records, deps);
        agg[isDown ? 1 : 0]!.push(performance.now() - a0);
        if (!rep.committed) throw new Error('outage bench: a run did not commit');
        const r0 = performance.now();
        await runRollup(rollDeps);
        roll[isDown ? 1 : 0]!.push(performance.now() - r0);
      }
      const largestAfter = await largestItem(client, store.o.tableName, false);
      const largestOutboxEntry = await largestItem(client, store.o.tableName, true);
      let entries = 0;
      for (const s of allShards(8)) entries += (await store.listOutbox(s, 1000)).length;
      await ph.call('posthog-down', { mode: false });
      let passes = 0;
      for (; passes < 100; passes++) {
        clock += 6 * 60_000; // past any backoff
        await runRollup({ ...rollDeps, outboxLimit: 100 });
        let left = 0;
        for (const s of allShards(8)) left += (await store.listOutbox(s, 1)).length;
        if (left === 0) break;
      }
      const stats = await posthog(ph);
      const stored = (await store.queryRange('TM#default#api_call', '2026', '2027')).reduce((s, i) => s + (i.values.n ?? 0), 0);
      const mean = (xs: number[]) => round(xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length), 0);
      return {
        windowSeconds: 10,
        windows: { before, down },
        callsPerWindow: per,
        aggregatorMsBefore: mean(agg[0]!),
        aggregatorMsDown: mean(agg[1]!),
        rollupMsBefore: mean(roll[0]!),
        rollupMsDown: mean(roll[1]!),
        largestItemBefore: largestBefore,
        largestItemAfter: largestAfter,
        largestOutboxEntry,
        outboxEntriesAtEnd: entries,
        recoveryPasses: passes + 1,
        deliveredCalls: stats.byEvent.api_call_batch?.calls ?? 0,
        storedCalls: stored,
      };
    })();
    progress(
      `PostHog outage: aggregator ${outage.aggregatorMsBefore} ms/window before, ${outage.aggregatorMsDown} ms during; largest item ${outage.largestItemBefore} → ${outage.largestItemAfter} bytes; ` +
        `${outage.outboxEntriesAtEnd} outbox entries (largest ${outage.largestOutboxEntry} bytes); delivered ${outage.deliveredCalls} of ${outage.storedCalls} calls in ${outage.recoveryPasses} pass(es) after`,
    );
    if (outage.deliveredCalls !== outage.storedCalls || outage.storedCalls !== (outage.windows.before + outage.windows.down) * outage.callsPerWindow) throw new Error('outage bench: calls lost');

    client.destroy();
    json.destroy();
    return { rows, capacity, outage, skew: skewSensitivity(o) };
  } finally {
    await Promise.all([dyn.stop(), ph.stop()]);
  }
}

/** Largest item of a table, bytes: outside the outbox, or (with `outbox`) of the outbox entries. */
async function largestItem(client: ReturnType<typeof createDynamoClient>, table: string, outbox: boolean): Promise<number> {
  const { ScanCommand } = await import('@aws-sdk/client-dynamodb');
  let max = 0;
  let start: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
  do {
    const r = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const i of r.Items ?? []) {
      const isOutbox = (i.pk?.S ?? '').startsWith('O#');
      if (isOutbox === outbox) max = Math.max(max, itemBytes(i as never));
    }
    start = r.LastEvaluatedKey;
  } while (start);
  return max;
}

/**
 * Active pairs in one 60 s window at 1M calls/minute for 100 … 100,000 users (Zipf 1.1, one event),
 * and what they cost per 1M calls: one batch event and two counter writes per pair (plus totals).
 */
export function skewSensitivity(o: { quick: boolean }): SkewRow[] {
  const calls = o.quick ? 50_000 : 1_000_000;
  return [100, 1000, 10_000, 100_000].map((users) => {
    const r = rng(17);
    const u = zipf(users, 1.1, r);
    const seen = new Uint8Array(users);
    let pairs = 0;
    for (let i = 0; i < calls; i++) {
      const k = u();
      if (!seen[k]) {
        seen[k] = 1;
        pairs++;
      }
    }
    const per1M = (v: number) => round((v / calls) * 1e6, 0);
    return { users, callsPerWindow: calls, pairs, posthogEventsPer1M: per1M(pairs), counterWritesPer1M: per1M(2 * pairs + 2), claimsPer1M: 1e6 };
  });
}
