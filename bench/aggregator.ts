/**
 * Benchmark 3: the aggregator on one 10,000-message batch (the SQS event source's largest), with
 * realistic key skew (Zipf over users and event names), against dynalite (DynamoDB wire protocol) and a
 * PostHog stand-in over HTTP, both in a child process. Messages are packed exactly as ingest packs them.
 *
 * Scenario `single`: 10,000 messages of 1 event (clients sending one call per request: the worst case,
 * one claim per call). Scenario `batched`: 200 messages of 100 events (clients batching; 20,000 calls).
 *
 * The store talks to dynalite through the client the functions use (src/store/dynamo-fast.ts); one
 * more `single` run through the AWS SDK v3 client (SdkDynamoApi) shows what that client costs.
 * Counts every DynamoDB request by operation (a wrapper around the store's DynamoApi) and estimates
 * write units from item sizes; then runs the outbox job as it would run after the stale period (releases the counters'
 * idempotency marks, removes the outbox entries), whose writes belong to the batch too.
 */
import { ensureTable } from '../local/emulators';
import { aggregate, batchEvents, counterDeltas } from '../src/aggregate/aggregate';
import { aggregateRecords, drainOutbox, type QueueRecord } from '../src/aggregate/aggregator';
import { packMessages } from '../src/queue/pack';
import { createDynamoClient } from '../src/runtime/aws';
import { createDynamoApi } from '../src/runtime/store';
import { PostHogNodeSink } from '../src/sink/posthog';
import { DynamoUsageStore } from '../src/store/dynamo';
import { beforeEachCall, type DynamoApi } from '../src/store/dynamo-api';
import { SdkDynamoApi } from '../src/store/dynamo-sdk';
import type { QueueMessageBody, QueuedEvent } from '../src/types';
import { uuidv7 } from '../src/util/ids';
import type { PosthogStats } from './servers';
import { cpuMicros, progress, rng, round, spawnTs, traffic, zipf } from './lib';

export interface AggregatorRow {
  scenario: 'single' | 'batched';
  /** The DynamoDB client under the store: `fast` as deployed, `sdk` the AWS SDK v3 reference. */
  client: 'fast' | 'sdk';
  messages: number;
  /** Mean SQS message body, bytes. */
  avgBodyBytes: number;
  calls: number;
  /** Distinct (event, user) pairs in the batch. */
  pairs: number;
  wallMs: number;
  eventsPerSecond: number;
  /** Aggregator process CPU per call (parse, aggregate, SDK clients, posthog-node). */
  cpuUsPerCall: number;
  /** dynalite's CPU over the same run (the emulator is the bottleneck locally). */
  dynaliteCpuMs: number;
  aggregatorCpuMs: number;
  dynamoRequests: Record<string, number>;
  dynamoWritesPer1M: number;
  /** Estimated write units (1 KB each; an update costs the larger item size). */
  writeUnitsPer1M: number;
  dynamoReadsPer1M: number;
  posthogEventsPer1M: number;
  posthogRequestsPer1M: number;
  /** Sum of `calls` over the batch events PostHog received (must equal `calls`). */
  posthogCalls: number;
}

const EVENTS = ['api_call', 'search', 'export', 'login', 'webhook'];

/** Approximate DynamoDB item size: attribute names + values. */
function itemBytes(item: Record<string, Record<string, unknown>> | undefined): number {
  if (!item) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += k.length;
    const val = v.S ?? v.N ?? v.B;
    if (typeof val === 'string') n += Buffer.byteLength(val);
    else if (val instanceof Uint8Array) n += val.length;
    else n += 16;
  }
  return n;
}

function buildRecords(scenario: 'single' | 'batched', messages: number): { records: QueueRecord[]; calls: number; pairs: number } {
  const t = traffic(11, 10_000);
  const r = rng(5);
  const ev = zipf(EVENTS.length, 1.2, r);
  const now = Date.now();
  const per = scenario === 'single' ? 1 : 100;
  const records: QueueRecord[] = [];
  const pairs = new Set<string>();
  for (let i = 0; i < messages; i++) {
    const events: QueuedEvent[] = [];
    for (let j = 0; j < per; j++) {
      const n = t.native(EVENTS[ev()]!) as { distinctId: string; event: string; properties: Record<string, unknown> };
      // A batch window of a few seconds, across a minute boundary now and then.
      const ts = now - Math.floor(r() * 90_000);
      events.push({ uuid: uuidv7(ts), event: n.event, distinct_id: n.distinctId, properties: n.properties, timestamp: new Date(ts).toISOString(), ip: '198.51.100.7', received_at: ts });
      pairs.add(`${n.event}\u0000${n.distinctId}`);
    }
    for (const m of packMessages(events, 1024 * 1024)) records.push({ messageId: `sqs-${scenario}-${i}`, body: m.body });
  }
  return { records, calls: messages * per, pairs: pairs.size };
}

export async function runAggregatorBench(o: { quick: boolean }): Promise<AggregatorRow[]> {
  const dyn = spawnTs('bench/servers.ts', ['--dynamo'], { label: 'dynalite' });
  const ph = spawnTs('bench/servers.ts', ['--posthog'], { label: 'posthog' });
  try {
    const [{ endpoint: dynamoEndpoint }, { endpoint: posthogUrl }] = await Promise.all([
      dyn.waitFor<{ endpoint: string }>((m) => m.ready === true),
      ph.waitFor<{ endpoint: string }>((m) => m.ready === true),
    ]);
    const aws = { AWS_REGION: 'us-east-1', TALLY_DYNAMODB_ENDPOINT: dynamoEndpoint };
    const client = createDynamoClient(aws);
    const fast = createDynamoApi(aws);
    const counts: Record<string, number> = {};
    let writeUnits = 0;
    const ledgerUnits = new Map<string, number>();
    /** The API with every request counted by operation, and write units estimated from item sizes. */
    const counted = (api: DynamoApi): DynamoApi =>
      beforeEachCall(api, (name, input) => {
        counts[name] = (counts[name] ?? 0) + 1;
        const i = input as { Item?: Record<string, Record<string, unknown>>; Key?: { pk?: { S?: string } } };
        if (name === 'PutItem') {
          const u = Math.max(1, Math.ceil(itemBytes(i.Item) / 1024));
          writeUnits += u;
          const pk = i.Item?.pk?.S;
          if (typeof pk === 'string' && pk.startsWith('b#')) ledgerUnits.set(pk, u);
        } else if (name === 'UpdateItem' || name === 'DeleteItem') {
          writeUnits += ledgerUnits.get(i.Key?.pk?.S ?? '') ?? 1;
        }
      });
    const apis = { fast: counted(fast), sdk: counted(new SdkDynamoApi(client)) };
    const sink = new PostHogNodeSink({ apiKey: 'phc_bench', host: posthogUrl });
    const staleMs = 120_000;

    const plan: Array<['single' | 'batched', number, 'fast' | 'sdk']> = o.quick
      ? [
          ['single', 500, 'fast'],
          ['batched', 10, 'fast'],
          ['single', 500, 'sdk'],
        ]
      : [
          ['single', 10_000, 'fast'],
          ['batched', 200, 'fast'],
          ['single', 10_000, 'sdk'],
        ];
    const rows: AggregatorRow[] = [];
    for (const [scenario, messages, clientKind] of plan) {
      // A table per run: the runs replay the same message ids.
      const table = `bench-aggregator-${rows.length}`;
      await ensureTable(client, table);
      const store = new DynamoUsageStore(apis[clientKind], { tableName: table });
      const { records, calls, pairs } = buildRecords(scenario, messages);
      progress(`aggregator ${scenario} (${clientKind} DynamoDB client): ${records.length} messages, ${calls} calls, ${pairs} distinct (event, user) pairs…`);
      for (const k of Object.keys(counts)) delete counts[k];
      writeUnits = 0;
      await ph.call('posthog-reset');
      const dynCpu0 = (await dyn.call<{ cpu: NodeJS.CpuUsage }>('cpu')).cpu;
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      const report = await aggregateRecords(records, { store, sink, staleMs });
      const wallMs = performance.now() - w0;
      if (report.failures.length || report.counted !== records.length || report.calls !== calls) {
        throw new Error(`aggregator run incomplete: ${JSON.stringify({ ...report, failures: report.failures.length })}`);
      }
      // The outbox job after the stale period: release the idempotency marks, drop the outbox entries.
      let later = 0;
      for (let round_ = 0; round_ < 10; round_++) {
        const d = await drainOutbox({ store, sink, staleMs, now: () => Date.now() + staleMs + 1000, limit: 1000 });
        later += d.done;
        if (d.backlog === 0) break;
      }
      const aggCpu = cpuMicros(cpu0);
      const dynCpu1 = (await dyn.call<{ cpu: NodeJS.CpuUsage }>('cpu')).cpu;
      const stats = await ph.call<PosthogStats>('posthog-stats');
      let posthogCalls = 0;
      for (const [name, b] of Object.entries(stats.byEvent)) if (name.endsWith('_batch')) posthogCalls += b.calls;
      const per1M = (v: number) => round((v / calls) * 1e6, 0);
      const writes = (counts.PutItem ?? 0) + (counts.UpdateItem ?? 0) + (counts.DeleteItem ?? 0);
      const reads = (counts.GetItem ?? 0) + (counts.Query ?? 0);
      const row: AggregatorRow = {
        scenario,
        client: clientKind,
        messages: records.length,
        avgBodyBytes: round(records.reduce((n, x) => n + Buffer.byteLength(x.body), 0) / records.length, 0),
        calls,
        pairs,
        wallMs: round(wallMs, 0),
        eventsPerSecond: round((calls / wallMs) * 1000, 0),
        cpuUsPerCall: round(aggCpu / calls, 1),
        dynaliteCpuMs: round((dynCpu1.user + dynCpu1.system - dynCpu0.user - dynCpu0.system) / 1000, 0),
        aggregatorCpuMs: round(aggCpu / 1000, 0),
        dynamoRequests: { ...counts },
        dynamoWritesPer1M: per1M(writes),
        writeUnitsPer1M: per1M(writeUnits),
        dynamoReadsPer1M: per1M(reads),
        posthogEventsPer1M: per1M(report.sent),
        posthogRequestsPer1M: per1M(stats.requests),
        posthogCalls,
      };
      if (posthogCalls !== calls) throw new Error(`PostHog batch events carry ${posthogCalls} calls, expected ${calls}`);
      rows.push(row);
      progress(
        `aggregator ${scenario} (${clientKind}): ${row.eventsPerSecond} calls/s (${row.wallMs} ms; outbox finished ${later} ledger(s)), ${row.cpuUsPerCall} µs CPU/call here + ${row.dynaliteCpuMs} ms dynalite CPU; ` +
          `per 1M calls: ${row.dynamoWritesPer1M} DynamoDB writes (${row.writeUnitsPer1M} WCU), ${row.posthogEventsPer1M} PostHog events in ${row.posthogRequestsPer1M} requests`,
      );
    }
    client.destroy();
    fast.destroy();
    return rows;
  } finally {
    await Promise.all([dyn.stop(), ph.stop()]);
  }
}

export interface SkewRow {
  users: number;
  callsPerBatch: number;
  /** Distinct (event, user) pairs in one batch. */
  pairs: number;
  posthogEventsPer1M: number;
  /** Counter UpdateItems per 1M calls: applied, then released by the outbox (2 per counter item). */
  counterWritesPer1M: number;
  /** One claim per message (single-event messages here). */
  claimsPer1M: number;
}

/**
 * How the batch events and counter writes per 1M calls depend on how many users share a batch: the
 * pure aggregation (no I/O) of one 10,000-call batch for 100 … 100,000 users (Zipf 1.1, 5 event names).
 */
export function skewSensitivity(o: { quick: boolean }): SkewRow[] {
  const callsPerBatch = o.quick ? 2000 : 10_000;
  return [100, 1000, 10_000, 100_000].map((users) => {
    const t = traffic(13, users);
    const r = rng(17);
    const ev = zipf(EVENTS.length, 1.2, r);
    const now = Date.now();
    const msgs: QueueMessageBody[] = [];
    for (let i = 0; i < callsPerBatch; i++) {
      const ts = now - Math.floor(r() * 5000);
      msgs.push({ v: 1, id: String(i), events: [{ uuid: String(i), event: EVENTS[ev()]!, distinct_id: t.user(), properties: {}, timestamp: new Date(ts).toISOString(), received_at: ts }] });
    }
    const agg = aggregate(msgs);
    const pairs = new Set(agg.rows.map((x) => `${x.event}\u0000${x.distinctId}`)).size;
    const per1M = (v: number) => round((v / callsPerBatch) * 1e6, 0);
    return {
      users,
      callsPerBatch,
      pairs,
      posthogEventsPer1M: per1M(batchEvents('b', agg.rows).length),
      counterWritesPer1M: per1M(2 * counterDeltas(agg.rows).length),
      claimsPer1M: 1e6,
    };
  });
}
