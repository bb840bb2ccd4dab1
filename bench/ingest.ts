/**
 * Benchmark 1: the ingest handler in-process and warm, as one Lambda environment runs it (one request
 * at a time). CPU per request and per event from `process.cpuUsage()` deltas over many requests;
 * latency per request from `performance.now()`. The SQS server (fauxqs) runs in a child process, so
 * its CPU is not counted; the SQS client's is.
 *
 * Queue variants, to show where the time goes:
 *   none  — the handler with a queue that packs the messages and does no I/O (middy, auth, decode,
 *           zod, normalise, pack);
 *   sdk   — SqsSdkQueue with the AWS SDK v3 client, with the settings of src/runtime/aws.ts;
 *   fast  — SqsJsonQueue (src/queue/sqs-json.ts): SQS JSON protocol over a keep-alive agent.
 *
 * Keys: every variant checks its key through the Authenticator (src/projects/auth.ts) over keys held in
 * memory. The `projects` row is the deployed setup: a `tk_` key looked up in DynamoDB (dynalite, in
 * another process; cached after the first request), the project's rate limit (tokens leased from its
 * DynamoDB bucket) and monthly quota on, sqs-json. `keycheck` is the cached key check alone.
 */
import { gzipSync } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { createIngestHandler, type ApiHandler } from '../functions/ingest/handler';
import { groupIntoCalls, packMessages } from '../src/queue/pack';
import { SqsSdkQueue } from '../src/queue/sqs-sdk';
import { SqsJsonQueue } from '../src/queue/sqs-json';
import type { EventQueue } from '../src/queue/types';
import { createSqsClient } from '../src/runtime/aws';
import { createProjectServices } from '../src/runtime/projects';
import { createDynamoApi, createStore } from '../src/runtime/store';
import { ensureTable, localAwsClientConfig } from '../local/emulators';
import { deliverWithPostHogNode } from '../src/sink/deliver';
import { cpuMicros, percentiles, progress, round, spawnTs, traffic, type Child } from './lib';

export type QueueVariant = 'none' | 'sdk' | 'fast';
export type Payload = 'single' | 'batch100' | 'posthog100' | 'keycheck';

export interface IngestRow {
  queue: QueueVariant;
  payload: Payload;
  eventsPerRequest: number;
  requests: number;
  cpuUsPerRequest: number;
  cpuUsPerEvent: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  /** `projects`: the key looked up in DynamoDB (cached), rate limit and quota on. */
  auth?: 'projects';
  /** CPU of one rate-limit lease (a GetItem and a conditional UpdateItem), and the calls one lease covers. */
  leaseCpuUs?: number;
  callsPerLease?: number;
  /** The same requests with configured keys in memory, measured interleaved with this row (same load). */
  pairedCpuUs?: number;
}

import { apiEvent as makeEvent } from '../test/support/api-event';
import { memoryAuth } from '../test/support/projects';

const KEY = 'tally_bench_key_0123456789';
const ctx = {} as Context;

export function apiEvent(path: string, body: string | Buffer, headers: Record<string, string>): APIGatewayProxyEventV2 {
  return makeEvent({ path, body, headers });
}

/** A pool of distinct requests of one shape (the handler does not mutate events). */
function requestPool(payload: Payload, size: number, key = KEY): APIGatewayProxyEventV2[] {
  const t = traffic(7);
  const auth = { authorization: `Bearer ${key}` };
  return Array.from({ length: size }, () => {
    if (payload === 'single') return apiEvent('/v1/usage', JSON.stringify(t.native('api_call')), auth);
    if (payload === 'batch100') return apiEvent('/v1/usage', JSON.stringify({ batch: Array.from({ length: 100 }, () => t.native('api_call')) }), auth);
    // posthog-node's /batch/ body: gzip JSON {api_key, batch, sent_at}; API Gateway hands it over base64.
    const body = { api_key: key, batch: Array.from({ length: 100 }, () => t.posthog('api_call')), sent_at: new Date().toISOString() };
    return apiEvent('/batch/', gzipSync(JSON.stringify(body)), { 'content-encoding': 'gzip' });
  });
}

/** No I/O: packs like the real queues (so pack cost is counted), then returns. */
class PackOnlyQueue implements EventQueue {
  async send(events: Parameters<EventQueue['send']>[0]) {
    const m = packMessages(events, 1024 * 1024);
    return { messages: m.length, calls: groupIntoCalls(m).length };
  }
}

async function measure(handler: ApiHandler, pool: APIGatewayProxyEventV2[], warmup: number, n: number): Promise<{ cpuUs: number; lat: number[]; wallMs: number }> {
  for (let i = 0; i < warmup; i++) {
    const r = await handler(pool[i % pool.length]!, ctx);
    if (r.statusCode !== 202 && r.statusCode !== 200) throw new Error(`ingest answered ${r.statusCode}: ${r.body}`);
  }
  const lat = new Array<number>(n);
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await handler(pool[i % pool.length]!, ctx);
    lat[i] = performance.now() - t0;
    if (r.statusCode !== 202 && r.statusCode !== 200) throw new Error(`ingest answered ${r.statusCode}: ${r.body}`);
  }
  return { cpuUs: cpuMicros(cpu0), lat, wallMs: performance.now() - w0 };
}

export interface IngestBenchOptions {
  quick: boolean;
}

/** A project as deployed: its key in DynamoDB, a rate limit of 20,000 calls/s (leases of 2,000) and a quota. */
async function deployedProjects(endpoint: string) {
  const client = new DynamoDBClient(localAwsClientConfig(endpoint, 'us-east-1'));
  await ensureTable(client, 'bench-projects');
  client.destroy();
  const aws = { AWS_REGION: 'us-east-1', TALLY_DYNAMODB_ENDPOINT: endpoint, TALLY_TABLE_NAME: 'bench-projects' };
  const db = createDynamoApi(aws);
  const p = createProjectServices({ db, tableName: 'bench-projects', usage: createStore(aws, db), deploymentOrigins: [] });
  const rate = { perSecond: 20_000, burst: 40_000 };
  await p.admin.createProject('bench', { rate, monthlyQuota: 1e12 });
  const { key } = await p.admin.createKey('bench', { scopes: ['ingest'] });
  return { p, key, db, callsPerLease: Math.ceil(rate.perSecond / 10) };
}

export async function runIngestBench(o: IngestBenchOptions): Promise<IngestRow[]> {
  const sqsServer: Child = spawnTs('bench/servers.ts', ['--sqs'], { label: 'fauxqs' });
  const dynamoServer: Child = spawnTs('bench/servers.ts', ['--dynamo'], { label: 'dynalite' });
  try {
    const { endpoint } = await sqsServer.waitFor<{ endpoint: string }>((m) => m.ready === true);
    const aws = { AWS_REGION: 'us-east-1', TALLY_SQS_ENDPOINT: endpoint };
    const sdk = createSqsClient(aws);
    const created = await sdk.send(new CreateQueueCommand({ QueueName: 'bench-ingest' }));
    const queueUrl = new URL(new URL(created.QueueUrl!).pathname, endpoint).href;
    const fast = new SqsJsonQueue({ queueUrl, region: 'us-east-1', endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    const queues: Record<QueueVariant, EventQueue> = {
      none: new PackOnlyQueue(),
      sdk: new SqsSdkQueue(sdk, { queueUrl }),
      fast,
    };
    const plan: Array<[Payload, number, number]> = o.quick
      ? [
          ['single', 200, 800],
          ['batch100', 30, 150],
          ['posthog100', 30, 150],
        ]
      : [
          ['single', 2000, 10_000],
          ['batch100', 300, 2000],
          ['posthog100', 300, 2000],
        ];
    const rows: IngestRow[] = [];
    for (const [payload, warmup, n] of plan) {
      const pool = requestPool(payload, payload === 'single' ? 1000 : 100);
      for (const variant of ['none', 'sdk', 'fast'] as const) {
        const handler = createIngestHandler({ queue: queues[variant], ...memoryAuth([KEY]) });
        const m = await measure(handler, pool, warmup, n);
        const per = payload === 'single' ? 1 : 100;
        const lp = percentiles(m.lat);
        const row: IngestRow = {
          queue: variant,
          payload,
          eventsPerRequest: per,
          requests: n,
          cpuUsPerRequest: round(m.cpuUs / n, 1),
          cpuUsPerEvent: round(m.cpuUs / n / per, 2),
          p50Ms: round(lp.p50, 3),
          p99Ms: round(lp.p99, 3),
          requestsPerSecond: round((n / m.wallMs) * 1000, 0),
        };
        rows.push(row);
        progress(`ingest ${payload.padEnd(10)} queue=${variant.padEnd(4)}: ${row.cpuUsPerRequest} µs CPU/request, ${row.cpuUsPerEvent} µs/event, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms`);
        if (variant !== 'none') await sdk.send(new PurgeQueueCommand({ QueueUrl: queueUrl }));
      }
    }
    // Deployed: the key in DynamoDB (cached after the first request), rate limit and quota on, sqs-json.
    const { endpoint: dynamoEndpoint } = await dynamoServer.waitFor<{ endpoint: string }>((m) => m.ready === true);
    const d = await deployedProjects(dynamoEndpoint);
    const [, warmup, n] = plan[0]!;
    // Interleaved with the same requests under configured keys in memory, in rounds, so both see the same
    // load on a shared machine: the difference is what looking keys up in DynamoDB and the limits cost.
    const deployed = createIngestHandler({ queue: fast, ...d.p });
    const configured = createIngestHandler({ queue: fast, ...memoryAuth([KEY]) });
    const poolD = requestPool('single', 1000, d.key);
    const poolC = requestPool('single', 1000);
    await measure(configured, poolC, warmup, 0);
    const m = { cpuUs: 0, lat: [] as number[], wallMs: 0 };
    let pairedUs = 0;
    const rounds = 5;
    for (let r = 0; r < rounds; r++) {
      const x = await measure(deployed, poolD, r === 0 ? warmup : 0, n / rounds);
      m.cpuUs += x.cpuUs;
      m.lat.push(...x.lat);
      m.wallMs += x.wallMs;
      pairedUs += (await measure(configured, poolC, 0, n / rounds)).cpuUs;
    }
    const lp = percentiles(m.lat);
    const leases = o.quick ? 50 : 500;
    const l0 = process.cpuUsage();
    for (let i = 0; i < leases; i++) await d.p.store.leaseTokens('bench-lease', 1, 1_000_000, 1_000_000_000, Date.now());
    const leaseCpuUs = round(cpuMicros(l0) / leases, 1);
    rows.push({ queue: 'fast', payload: 'single', auth: 'projects', eventsPerRequest: 1, requests: n, cpuUsPerRequest: round(m.cpuUs / n, 1), cpuUsPerEvent: round(m.cpuUs / n, 2), p50Ms: round(lp.p50, 3), p99Ms: round(lp.p99, 3), requestsPerSecond: round((n / m.wallMs) * 1000, 0), leaseCpuUs, callsPerLease: d.callsPerLease, pairedCpuUs: round(pairedUs / n, 1) });
    progress(`ingest single + projects (DynamoDB key, rate limit, quota): ${rows.at(-1)!.cpuUsPerRequest} µs CPU/request (interleaved, configured keys in memory: ${round(pairedUs / n, 1)} µs); one lease ${leaseCpuUs} µs per ${d.callsPerLease} calls`);
    // The cached key check alone: shape, sha256, LRU hit, project, scope.
    const checks = o.quick ? 20_000 : 200_000;
    for (let i = 0; i < 1000; i++) await d.p.auth.authenticate(d.key, 'ingest');
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    for (let i = 0; i < checks; i++) await d.p.auth.authenticate(d.key, 'ingest');
    const checkUs = cpuMicros(c0) / checks;
    rows.push({ queue: 'none', payload: 'keycheck', auth: 'projects', eventsPerRequest: 0, requests: checks, cpuUsPerRequest: round(checkUs, 2), cpuUsPerEvent: round(checkUs, 2), p50Ms: 0, p99Ms: 0, requestsPerSecond: round((checks / (performance.now() - w0)) * 1000, 0) });
    progress(`cached key check: ${round(checkUs, 2)} µs CPU`);
    d.db.destroy();
    sdk.destroy();
    fast.destroy();
    return rows;
  } finally {
    await sqsServer.stop();
    await dynamoServer.stop();
  }
}

/** CPU of one posthog-node delivery (a fresh client, gzip, one request, the answer) by HTTP client. */
export interface PostHogHttpRow {
  /** Events per delivery: 1 is a sampled single-event request's raw capture. */
  events: number;
  deliveries: number;
  /** tally's fetch over node:http (src/sink/http-fetch.ts, the default). */
  nodeCpuUs: number;
  /** posthog-node's own global fetch (undici): `POSTHOG_HTTP=fetch`. */
  fetchCpuUs: number;
}

/**
 * posthog-node deliveries (src/sink/deliver.ts, as sampling and the roll-up make them) to the PostHog
 * stand-in in another process, through each HTTP client, interleaved in rounds so both see the same load.
 */
export async function runPostHogHttpBench(o: IngestBenchOptions): Promise<PostHogHttpRow[]> {
  const ph: Child = spawnTs('bench/servers.ts', ['--posthog'], { label: 'posthog' });
  try {
    const { endpoint: host } = await ph.waitFor<{ endpoint: string }>((m) => m.ready === true);
    const rows: PostHogHttpRow[] = [];
    let id = 0;
    const msg = () => ({ distinctId: `user-${id % 500}`, event: 'api_call', uuid: `01a2043c-0000-7000-8000-${String(id++).padStart(12, '0')}`, properties: { route: '/big/:id', status: 200 } });
    const deliver = async (events: number, fetch: typeof globalThis.fetch | undefined) => {
      const out = await deliverWithPostHogNode(Array.from({ length: events }, msg), { apiKey: 'phc_bench', host, requestTimeoutMs: 5000, fetchRetryCount: 0, fetchRetryDelayMs: 0, maxBatchSize: 1000, ...(fetch ? { fetch } : {}) });
      if (out.sent !== events) throw new Error(`PostHog stand-in took ${out.sent} of ${events}: ${out.reason}`);
    };
    for (const events of [1, 100]) {
      const n = o.quick ? 50 : events === 1 ? 2000 : 300;
      const rounds = 5;
      const cpu = { node: 0, fetch: 0 };
      for (const v of ['node', 'fetch'] as const) for (let i = 0; i < n / 10; i++) await deliver(events, v === 'fetch' ? globalThis.fetch : undefined);
      for (let r = 0; r < rounds; r++) {
        for (const v of ['node', 'fetch'] as const) {
          const c0 = process.cpuUsage();
          for (let i = 0; i < n / rounds; i++) await deliver(events, v === 'fetch' ? globalThis.fetch : undefined);
          cpu[v] += cpuMicros(c0);
        }
      }
      const row = { events, deliveries: n, nodeCpuUs: round(cpu.node / n, 1), fetchCpuUs: round(cpu.fetch / n, 1) };
      rows.push(row);
      progress(`PostHog delivery of ${events} event(s): ${row.nodeCpuUs} µs CPU over node:http, ${row.fetchCpuUs} µs over the global fetch`);
    }
    return rows;
  } finally {
    await ph.stop();
  }
}
