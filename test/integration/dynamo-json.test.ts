/**
 * The SDK-free DynamoDB client (src/store/dynamo-json.ts) against dynalite, the DynamoDB wire protocol,
 * with the SDK client as the independent reader; and its retry rules against a scripted HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoJsonApi } from '../../src/store/dynamo-json';
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

describe('against dynalite', () => {
  it('binary values survive both ways, read by either client', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255, 31, 139]);
    await db.api.putItem({ TableName: table, Item: { ...key('bin-1'), d: { B: bytes }, n: { N: '42' } } });
    const viaSdk = await db.client.send(new GetItemCommand({ TableName: table, Key: key('bin-1'), ConsistentRead: true }));
    expect(Buffer.from(viaSdk.Item!.d!.B!)).toEqual(bytes);
    await db.client.send(new PutItemCommand({ TableName: table, Item: { ...key('bin-2'), d: { B: bytes } } }));
    const viaFast = await db.api.getItem({ TableName: table, Key: key('bin-2'), ConsistentRead: true });
    expect(Buffer.isBuffer(viaFast.Item!.d!.B)).toBe(true);
    expect(viaFast.Item!.d!.B).toEqual(bytes);
    expect((await db.api.getItem({ TableName: table, Key: key('bin-1') })).Item!.n).toEqual({ N: '42' });
  });

  it('a failed condition rejects with DynamoDB’s error name; nothing is written', async () => {
    await db.api.putItem({ TableName: table, Item: { ...key('c-1'), v: { S: 'first' } }, ConditionExpression: 'attribute_not_exists(pk)' });
    const err = await db.api.putItem({ TableName: table, Item: { ...key('c-1'), v: { S: 'second' } }, ConditionExpression: 'attribute_not_exists(pk)' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ConditionalCheckFailedException');
    expect((await db.api.getItem({ TableName: table, Key: key('c-1'), ConsistentRead: true })).Item!.v).toEqual({ S: 'first' });
  });

  it('updates with ADD and returns the new values; deletes', async () => {
    for (let i = 0; i < 3; i++) {
      await db.api.updateItem({ TableName: table, Key: key('u-1'), UpdateExpression: 'ADD calls :n', ExpressionAttributeValues: { ':n': { N: '5' } } });
    }
    const r = await db.api.updateItem({ TableName: table, Key: key('u-1'), UpdateExpression: 'ADD calls :n', ExpressionAttributeValues: { ':n': { N: '1' } }, ReturnValues: 'ALL_NEW' });
    expect(r.Attributes!.calls).toEqual({ N: '16' });
    await db.api.deleteItem({ TableName: table, Key: key('u-1') });
    expect((await db.api.getItem({ TableName: table, Key: key('u-1'), ConsistentRead: true })).Item).toBeUndefined();
  });

  it('queries page by page with LastEvaluatedKey', async () => {
    for (let i = 0; i < 25; i++) await db.api.putItem({ TableName: table, Item: { pk: { S: 'q-1' }, sk: { S: String(i).padStart(3, '0') } } });
    const seen: string[] = [];
    let start: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      const r = await db.api.query({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'q-1' } }, Limit: 10, ExclusiveStartKey: start as never });
      seen.push(...r.Items!.map((i) => i.sk!.S!));
      start = r.LastEvaluatedKey;
      pages++;
    } while (start);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => String(i).padStart(3, '0')));
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('an unknown table is a non-retryable ResourceNotFoundException', async () => {
    const err = await db.api.getItem({ TableName: 'no-such-table', Key: key('x') }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ResourceNotFoundException');
  });
});

describe('retries', () => {
  let server: Server;
  let answers: Array<[number, Record<string, unknown>]>;
  let targets: string[];
  let api: DynamoJsonApi;
  beforeEach(async () => {
    answers = [];
    targets = [];
    server = createServer((req, res) => {
      targets.push(String(req.headers['x-amz-target']));
      req.resume();
      req.on('end', () => {
        const [status, body] = answers.shift() ?? [200, {}];
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    api = new DynamoJsonApi({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 4, retryBaseMs: 1 });
  });
  afterEach(async () => {
    api.destroy();
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

  it('a failed condition is not retried', async () => {
    answers.push([400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' }]);
    const err = await api.putItem({ TableName: 't', Item: key('x'), ConditionExpression: 'attribute_not_exists(pk)' }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ConditionalCheckFailedException');
    expect(targets).toHaveLength(1);
  });
});
