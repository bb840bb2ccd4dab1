/**
 * A dynalite-backed store for integration tests, with fault injection. The store talks to dynalite
 * through the DynamoApi production builds (src/runtime/store.ts, the default `json` client); an SDK client
 * sets tables up and reads items back, independently of it.
 */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
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

export async function readCalls(client: DynamoDBClient, table: string, pk: string, sk: string): Promise<{ calls: number; ap?: string[] }> {
  const r = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }));
  return { calls: Number(r.Item?.calls?.N ?? 0), ap: r.Item?.ap?.SS };
}

/** A sink that records what it is given and can be switched off, for store-level tests. */
export class RecordingSink implements PostHogSink {
  events: PostHogEvent[] = [];
  down = false;
  async send(events: PostHogEvent[]): Promise<void> {
    if (this.down) throw new Error('PostHog unreachable');
    this.events.push(...events);
  }
  /** Events by uuid (PostHog deduplicates on it). */
  unique(): PostHogEvent[] {
    return [...new Map(this.events.map((e) => [e.uuid, e])).values()];
  }
}

export const storeFor = (api: DynamoApi, tableName: string): DynamoUsageStore => new DynamoUsageStore(api, { tableName, concurrency: 8 });
