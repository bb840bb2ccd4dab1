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
 */
import { gzipSync } from 'node:zlib';
import { CreateQueueCommand, PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { createIngestHandler, type ApiHandler } from '../functions/ingest/handler';
import { groupIntoCalls, packMessages } from '../src/queue/pack';
import { SqsSdkQueue } from '../src/queue/sqs-sdk';
import { SqsJsonQueue } from '../src/queue/sqs-json';
import type { EventQueue } from '../src/queue/types';
import { createSqsClient } from '../src/runtime/aws';
import { cpuMicros, percentiles, progress, round, spawnTs, traffic, type Child } from './lib';

export type QueueVariant = 'none' | 'sdk' | 'fast';
export type Payload = 'single' | 'batch100' | 'posthog100';

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
}

import { apiEvent as makeEvent } from '../test/support/api-event';
import { memoryAuth } from '../test/support/projects';

const KEY = 'tally_bench_key_0123456789';
const ctx = {} as Context;

export function apiEvent(path: string, body: string | Buffer, headers: Record<string, string>): APIGatewayProxyEventV2 {
  return makeEvent({ path, body, headers });
}

/** A pool of distinct requests of one shape (the handler does not mutate events). */
function requestPool(payload: Payload, size: number): APIGatewayProxyEventV2[] {
  const t = traffic(7);
  const auth = { authorization: `Bearer ${KEY}` };
  return Array.from({ length: size }, () => {
    if (payload === 'single') return apiEvent('/v1/usage', JSON.stringify(t.native('api_call')), auth);
    if (payload === 'batch100') return apiEvent('/v1/usage', JSON.stringify({ batch: Array.from({ length: 100 }, () => t.native('api_call')) }), auth);
    // posthog-node's /batch/ body: gzip JSON {api_key, batch, sent_at}; API Gateway hands it over base64.
    const body = { api_key: KEY, batch: Array.from({ length: 100 }, () => t.posthog('api_call')), sent_at: new Date().toISOString() };
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

export async function runIngestBench(o: IngestBenchOptions): Promise<IngestRow[]> {
  const sqsServer: Child = spawnTs('bench/servers.ts', ['--sqs'], { label: 'fauxqs' });
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
    sdk.destroy();
    fast.destroy();
    return rows;
  } finally {
    await sqsServer.stop();
  }
}
