/**
 * The store's {@link DynamoApi} as production builds it (src/runtime/store.ts), over both implementations
 * `TALLY_AWS_CLIENT` chooses between: `json` (tally's own JSON-protocol client, the default) and `sdk`
 * (the AWS SDK v3 client). One suite for both: against dynalite, the DynamoDB wire protocol, with an
 * independent SDK client as the reader; and the retry rules against a scripted HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoApi, type ClosableDynamoApi } from '../../src/runtime/store';
import { withDeadline } from '../../src/util/deadline';
import { startTestDynamo, type TestDynamo } from '../support/store';

jest.setTimeout(30_000);

let db: TestDynamo;
let table: string;
beforeAll(async () => {
  db = await startTestDynamo();
  table = await db.newTable();
});
afterAll(async () => db?.stop());

const key = (pk: string) => ({ pk: { S: pk }, sk: { S: 'x' } });

describe.each(['json', 'sdk'] as const)('TALLY_AWS_CLIENT=%s', (impl) => {
describe('against dynalite', () => {
  let api: ClosableDynamoApi;
  beforeAll(() => {
    api = createDynamoApi({ AWS_REGION: 'us-east-1', TALLY_AWS_CLIENT: impl, TALLY_DYNAMODB_ENDPOINT: db.emulator.endpoint });
  });
  afterAll(() => api.destroy());
  const k = (pk: string) => key(`${impl}-${pk}`);

  it('binary values survive both ways, read by either client', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255, 31, 139]);
    await api.putItem({ TableName: table, Item: { ...k('bin-1'), d: { B: bytes }, n: { N: '42' } } });
    const viaSdk = await db.client.send(new GetItemCommand({ TableName: table, Key: k('bin-1'), ConsistentRead: true }));
    expect(Buffer.from(viaSdk.Item!.d!.B!)).toEqual(bytes);
    await db.client.send(new PutItemCommand({ TableName: table, Item: { ...k('bin-2'), d: { B: bytes } } }));
    const viaApi = await api.getItem({ TableName: table, Key: k('bin-2'), ConsistentRead: true });
    expect(viaApi.Item!.d!.B).toBeInstanceOf(Uint8Array); // a Buffer from the JSON client
    expect(Buffer.from(viaApi.Item!.d!.B!)).toEqual(bytes);
    expect((await api.getItem({ TableName: table, Key: k('bin-1') })).Item!.n).toEqual({ N: '42' });
  });

  it('a failed condition rejects with DynamoDB’s error name; nothing is written', async () => {
    await api.putItem({ TableName: table, Item: { ...k('c-1'), v: { S: 'first' } }, ConditionExpression: 'attribute_not_exists(pk)' });
    const err = await api.putItem({ TableName: table, Item: { ...k('c-1'), v: { S: 'second' } }, ConditionExpression: 'attribute_not_exists(pk)' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ConditionalCheckFailedException');
    expect((await api.getItem({ TableName: table, Key: k('c-1'), ConsistentRead: true })).Item!.v).toEqual({ S: 'first' });
  });

  it('updates with ADD and returns the new values; deletes', async () => {
    for (let i = 0; i < 3; i++) {
      await api.updateItem({ TableName: table, Key: k('u-1'), UpdateExpression: 'ADD calls :n', ExpressionAttributeValues: { ':n': { N: '5' } } });
    }
    const r = await api.updateItem({ TableName: table, Key: k('u-1'), UpdateExpression: 'ADD calls :n', ExpressionAttributeValues: { ':n': { N: '1' } }, ReturnValues: 'ALL_NEW' });
    expect(r.Attributes!.calls).toEqual({ N: '16' });
    await api.deleteItem({ TableName: table, Key: k('u-1') });
    expect((await api.getItem({ TableName: table, Key: k('u-1'), ConsistentRead: true })).Item).toBeUndefined();
  });

  it('queries page by page with LastEvaluatedKey', async () => {
    for (let i = 0; i < 25; i++) await api.putItem({ TableName: table, Item: { pk: { S: `${impl}-q-1` }, sk: { S: String(i).padStart(3, '0') } } });
    const seen: string[] = [];
    let start: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      const r = await api.query({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: `${impl}-q-1` } }, Limit: 10, ExclusiveStartKey: start as never });
      seen.push(...r.Items!.map((i) => i.sk!.S!));
      start = r.LastEvaluatedKey;
      pages++;
    } while (start);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => String(i).padStart(3, '0')));
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('gets many items in one batch, binary values decoded, absent keys left out', async () => {
    await api.putItem({ TableName: table, Item: { ...k('bg-1'), d: { B: Buffer.from([1, 2, 3]) } } });
    await api.putItem({ TableName: table, Item: { ...k('bg-2'), st: { S: 'c' } } });
    const r = await api.batchGetItem({ RequestItems: { [table]: { Keys: [k('bg-1'), k('bg-2'), k('bg-absent')], ConsistentRead: true } } });
    const items = r.Responses![table]!;
    expect(items.map((i) => i.pk!.S).sort()).toEqual([`${impl}-bg-1`, `${impl}-bg-2`]);
    expect(Buffer.from(items.find((i) => i.pk!.S === `${impl}-bg-1`)!.d!.B!)).toEqual(Buffer.from([1, 2, 3]));
    expect(r.UnprocessedKeys?.[table]?.Keys ?? []).toEqual([]);
  });

  it('an unknown table is a non-retryable ResourceNotFoundException', async () => {
    const err = await api.getItem({ TableName: 'no-such-table', Key: k('x') }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ResourceNotFoundException');
  });
});

describe('retries', () => {
  let server: Server;
  let answers: Array<[number, Record<string, unknown>]>;
  let targets: string[];
  let api: ClosableDynamoApi;
  beforeEach(async () => {
    answers = [];
    targets = [];
    server = createServer((req, res) => {
      targets.push(String(req.headers['x-amz-target']));
      req.resume();
      req.on('end', () => {
        const [status, body] = answers.shift() ?? [200, {}];
        if (status === 0) return; // hang: accept and never answer
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    api = createDynamoApi({ AWS_REGION: 'us-east-1', TALLY_AWS_CLIENT: impl, TALLY_DYNAMODB_ENDPOINT: `http://127.0.0.1:${port}` }, { maxAttempts: 4, retryBaseMs: 1 });
  });
  afterEach(async () => {
    api.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const throttled: [number, Record<string, unknown>] = [400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' }];

  it('throttling and 5xx are retried until an attempt succeeds', async () => {
    answers.push(throttled, [500, { __type: 'InternalServerError' }], [200, { Item: { pk: { S: 'ok' } } }]);
    const r = await api.getItem({ TableName: 't', Key: key('x') });
    expect(r.Item).toEqual({ pk: { S: 'ok' } });
    expect(targets).toEqual(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem']);
  });

  it('throttling beyond maxAttempts rejects with the throttling error', async () => {
    answers.push(throttled, throttled, throttled, throttled, throttled);
    const err = await api.updateItem({ TableName: 't', Key: key('x'), UpdateExpression: 'ADD n :n', ExpressionAttributeValues: { ':n': { N: '1' } } }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ProvisionedThroughputExceededException');
    expect(targets).toHaveLength(4);
  });

  it('a hanging DynamoDB: the call ends at the invocation’s deadline', async () => {
    answers.push([0, {}], [0, {}], [0, {}], [0, {}]);
    const t0 = Date.now();
    const err = await withDeadline(Date.now() + 300, () => api.getItem({ TableName: 't', Key: key('x') })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - t0).toBeLessThan(2000); // far below 4 attempts of the 5 s request timeout
  });

  it('a failed condition is not retried', async () => {
    answers.push([400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' }]);
    const err = await api.putItem({ TableName: 't', Item: key('x'), ConditionExpression: 'attribute_not_exists(pk)' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ConditionalCheckFailedException');
    expect(targets).toHaveLength(1);
  });
});
});
