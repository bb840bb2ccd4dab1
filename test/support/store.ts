/**
 * A dynalite-backed store for integration tests, with fault injection. The store talks to dynalite
 * through the DynamoApi production builds (src/runtime/store.ts, the default `json` client); an SDK client
 * sets tables up and reads items back, independently of it.
 */
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { ensureTable, startDynamo, localAwsClientConfig, type Emulator } from '../../local/emulators';
import { DynamoUsageStore } from '../../src/store/dynamo';
import { beforeEachCall, type DynamoApi } from '../../src/store/dynamo-api';
import { createDynamoApi, type ClosableDynamoApi } from '../../src/runtime/store';
import type { PostHogSink } from '../../src/sink/types';
import type { PostHogEvent } from '../../src/types';

export interface TestDynamo {
  emulator: Emulator;
  client: DynamoDBClient;
  /** What the store uses. */
  api: ClosableDynamoApi;
  newTable(): Promise<string>;
  stop(): Promise<void>;
}

let tables = 0;

export async function startTestDynamo(): Promise<TestDynamo> {
  const emulator = await startDynamo({ port: 0 });
  const client = new DynamoDBClient(localAwsClientConfig(emulator.endpoint, 'us-east-1'));
  const api = createDynamoApi({ AWS_REGION: 'us-east-1', TALLY_DYNAMODB_ENDPOINT: emulator.endpoint });
  return {
    emulator,
    client,
    api,
    async newTable() {
      const name = `tally-test-${process.pid}-${++tables}`;
      await ensureTable(client, name);
      return name;
    },
    async stop() {
      client.destroy();
      api.destroy();
      await emulator.stop();
    },
  };
}

/**
 * A DynamoDB API that forwards to the real one but fails on demand: `failWhen(command, input, n)`
 * returning true makes that call throw as a network fault would, instead of reaching DynamoDB.
 * Commands are named as the SDK names them (`PutItemCommand`, …).
 */
export function faultyApi(real: DynamoApi, failWhen: (cmdName: string, input: Record<string, unknown>, n: number) => boolean): DynamoApi {
  let n = 0;
  return beforeEachCall(real, (operation, input) => {
    if (failWhen(`${operation}Command`, input, ++n)) {
      const err = new Error('injected fault: connection reset');
      err.name = 'TimeoutError';
      throw err;
    }
  });
}

/**
 * A DynamoDB API whose matching calls are sent twice, the second answer standing: a request DynamoDB
 * applied whose answer was lost, retried by the client (a conditional put then fails its condition).
 */
export function lostAnswerApi(real: DynamoApi, when: (cmdName: string, input: Record<string, unknown>) => boolean): DynamoApi {
  const wrap = <K extends keyof DynamoApi>(op: K, name: string) =>
    (async (input: never) => {
      const call = real[op] as (i: never) => Promise<unknown>;
      if (!when(`${name}Command`, input as Record<string, unknown>)) return call.call(real, input);
      await call.call(real, input).catch(() => undefined);
      return call.call(real, input);
    }) as DynamoApi[K];
  return {
    putItem: wrap('putItem', 'PutItem'),
    getItem: wrap('getItem', 'GetItem'),
    updateItem: wrap('updateItem', 'UpdateItem'),
    deleteItem: wrap('deleteItem', 'DeleteItem'),
    query: wrap('query', 'Query'),
    batchGetItem: wrap('batchGetItem', 'BatchGetItem'),
  };
}

/** Every item of a table with its approximate DynamoDB size (attribute names + values), largest first. */
export async function itemSizes(client: DynamoDBClient, table: string): Promise<Array<{ pk: string; sk: string; bytes: number }>> {
  const out: Array<{ pk: string; sk: string; bytes: number }> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const r = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const i of r.Items ?? []) {
      let bytes = 0;
      for (const [k, v] of Object.entries(i)) {
        bytes += k.length;
        const val = v.S ?? v.N ?? v.B;
        bytes += typeof val === 'string' ? Buffer.byteLength(val) : val instanceof Uint8Array ? val.length : 8;
      }
      out.push({ pk: i.pk!.S!, sk: i.sk!.S!, bytes });
    }
    start = r.LastEvaluatedKey;
  } while (start);
  return out.sort((a, b) => b.bytes - a.bytes);
}

/** An error shaped like posthog-node's HTTP error (a `status`). */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP error while fetching PostHog: status=${status}`);
  }
}

/** A sink that records what it is given; it can be switched off, or refuse events (400) that `refuse` picks. */
export class RecordingSink implements PostHogSink {
  events: PostHogEvent[] = [];
  down = false;
  requests = 0;
  refuse?: (e: PostHogEvent) => boolean;
  async send(events: PostHogEvent[]): Promise<void> {
    this.requests++;
    if (this.down) throw new Error('PostHog unreachable');
    if (this.refuse && events.some(this.refuse)) throw new HttpStatusError(400);
    this.events.push(...events);
  }
  /** Events by uuid (PostHog deduplicates on it). */
  unique(): PostHogEvent[] {
    return [...new Map(this.events.map((e) => [e.uuid, e])).values()];
  }
}

export const storeFor = (api: DynamoApi, tableName: string): DynamoUsageStore => new DynamoUsageStore(api, { tableName, concurrency: 8 });
