/**
 * The ingest handler against fauxqs (real SQS wire protocol), with the queue production builds
 * (src/runtime/queue.ts) in both implementations (`TALLY_AWS_CLIENT=json|sdk`): what is queued is what
 * was sent, normalised; nothing is queued for a rejected request; a dead queue is a 503; a hanging queue
 * is tally's own 503 JSON, answered before the invocation's timeout.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { createIngestHandler } from '../../functions/ingest/handler';
import { apiEvent as makeEvent } from '../support/api-event';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INGEST_ANSWER_RESERVE_MS } from '../../functions/ingest/handler';
import { createEventQueue } from '../../src/runtime/queue';
import type { QueueMessageBody } from '../../src/types';
import { ensureResources, localAwsClientConfig, startDynamo, startSqs, type Emulator } from '../../local/emulators';
import { memoryAuth } from '../support/projects';

const FIX = resolve(__dirname, '../fixtures/posthog-node-5.70');
const KEY = 'phc_testprojectkey'; // the fixture's api_key is a configured tally key here
let sqsEmu: Emulator;
let dynEmu: Emulator;
let client: SQSClient;
let queueUrl: string;

beforeAll(async () => {
  [sqsEmu, dynEmu] = await Promise.all([startSqs({ port: 0 }), startDynamo({ port: 0 })]);
  const r = await ensureResources({
    dynamoEndpoint: dynEmu.endpoint,
    sqsEndpoint: sqsEmu.endpoint,
    region: 'us-east-1',
    tableName: 'ingest-test',
    queueName: 'ingest-test',
    dlqName: 'ingest-test-dlq',
    maxReceiveCount: 3,
    visibilityTimeoutSeconds: 30,
  });
  queueUrl = r.queueUrl;
  client = new SQSClient(localAwsClientConfig(sqsEmu.endpoint, 'us-east-1'));
});
afterAll(async () => {
  client?.destroy();
  await Promise.all([sqsEmu?.stop(), dynEmu?.stop()]);
});

function apiEvent(method: string, path: string, body: string | Buffer, headers: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return makeEvent({ method, path, body, headers });
}
const ctx = {} as Context;

async function drainQueue(): Promise<QueueMessageBody[]> {
  const out: QueueMessageBody[] = [];
  for (;;) {
    const r = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    if (!r.Messages?.length) return out;
    out.push(...r.Messages.map((m) => JSON.parse(m.Body!) as QueueMessageBody));
  }
}

describe.each(['json', 'sdk'] as const)('TALLY_AWS_CLIENT=%s', (impl) => {
const queueFor = (url: string, endpoint: string) => createEventQueue({ AWS_REGION: 'us-east-1', TALLY_AWS_CLIENT: impl, TALLY_QUEUE_URL: url, TALLY_SQS_ENDPOINT: endpoint }, { retryBaseMs: 1 });
const handler = () => createIngestHandler({ queue: queueFor(queueUrl, sqsEmu.endpoint), ...memoryAuth([KEY, 'native-key-123']) });

test('the real posthog-node 5.70 gzip batch is accepted with {"status":1} and queued normalised', async () => {
  const gz = readFileSync(resolve(FIX, 'batch.body.gz'));
  const res = await handler()(apiEvent('POST', '/batch/', gz, { 'content-type': 'application/json', 'content-encoding': 'gzip' }), ctx);
  expect(res.statusCode).toBe(200);
  expect(JSON.parse(res.body!)).toEqual({ status: 1 });
  const msgs = await drainQueue();
  expect(msgs).toHaveLength(1); // one request → one message → one SQS call
  const events = msgs[0]!.events;
  expect(events).toHaveLength(26);
  const movie = events.find((e) => e.event === 'movie played')!;
  expect(movie.distinct_id).toBe('1234');
  expect(movie.uuid).toBe('01a2043c-7240-7450-99da-2aefce8ea339');
  expect(movie.ip).toBe('198.51.100.7');
  expect(events.filter((e) => e.event === 'big_route')).toHaveLength(20);
});

test('a native batch is one SendMessageBatch of as few messages as fit', async () => {
  const batch = Array.from({ length: 1000 }, (_, i) => ({ distinctId: `u${i}`, properties: { pad: 'p'.repeat(2000) } }));
  const res = await handler()(apiEvent('POST', '/v1/usage', JSON.stringify({ batch }), { authorization: 'Bearer native-key-123' }), ctx);
  expect(res.statusCode).toBe(202);
  expect(JSON.parse(res.body!)).toEqual({ accepted: 1000 });
  const msgs = await drainQueue();
  expect(msgs.length).toBeGreaterThan(1); // ~2.2 MB does not fit one 1 MiB message
  expect(msgs.length).toBeLessThanOrEqual(3);
  expect(msgs.flatMap((m) => m.events)).toHaveLength(1000);
  expect(msgs.flatMap((m) => m.events).every((e) => e.event === 'api_call')).toBe(true);
});

test('a rejected request queues nothing', async () => {
  const h = handler();
  const bad = [
    await h(apiEvent('POST', '/v1/usage', JSON.stringify({ batch: [{ distinctId: 'a' }, { distinctId: '' }] }), { 'x-api-key': 'native-key-123' }), ctx),
    await h(apiEvent('POST', '/v1/usage', JSON.stringify({ distinctId: 'a' }), { 'x-api-key': 'nope-nope-nope' }), ctx),
    await h(apiEvent('POST', '/capture/', JSON.stringify({ event: 'x', distinct_id: 'a', api_key: 'nope' }), {}), ctx),
    await h(apiEvent('GET', '/v1/nothing', '', {}), ctx),
  ];
  expect(bad.map((r) => r.statusCode)).toEqual([400, 401, 401, 404]);
  expect(JSON.parse(bad[0]!.body!)).toMatchObject({ error: 'invalid_request', details: [{ path: 'batch.1.distinctId', message: 'must not be empty' }] });
  expect(await drainQueue()).toEqual([]);
});

test('an unreachable queue is a 503 that says to retry, never a 2xx', async () => {
  const h = createIngestHandler({ queue: queueFor('http://127.0.0.1:9/000000000000/q', 'http://127.0.0.1:9'), ...memoryAuth([KEY]) });
  const res = await h(apiEvent('POST', '/v1/usage', JSON.stringify({ distinctId: 'a' }), { authorization: `Bearer ${KEY}` }), ctx);
  expect(res.statusCode).toBe(503);
  expect(res.headers?.['retry-after']).toBe('1');
  expect(JSON.parse(res.body!).error).toBe('queue_unavailable');
});

test('a hanging queue: tally’s own 503 JSON, answered with time to spare before the invocation’s timeout', async () => {
  const server = createServer((req) => req.resume()); // accepts every request and never answers
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const h = createIngestHandler({ queue: queueFor(`${endpoint}/000000000000/q`, endpoint), ...memoryAuth([KEY]) });
    const timeoutMs = INGEST_ANSWER_RESERVE_MS + 500;
    const started = Date.now();
    const lambdaCtx = { getRemainingTimeInMillis: () => timeoutMs - (Date.now() - started) } as Context;
    const res = await h(apiEvent('POST', '/v1/usage', JSON.stringify({ distinctId: 'a' }), { authorization: `Bearer ${KEY}` }), lambdaCtx);
    const took = Date.now() - started;
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body!)).toMatchObject({ error: 'queue_unavailable' });
    expect(took).toBeLessThan(timeoutMs - INGEST_ANSWER_RESERVE_MS / 2); // answered, not timed out by Lambda
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
});
