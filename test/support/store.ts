/** A dynalite-backed store for integration tests, with fault injection on the real client. */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ensureTable, startDynamo, localAwsClientConfig, type Emulator } from '../../local/emulators';
import { DynamoUsageStore } from '../../src/store/dynamo';
import type { PostHogSink } from '../../src/sink/types';
import type { PostHogEvent } from '../../src/types';

export interface TestDynamo {
  emulator: Emulator;
  client: DynamoDBClient;
  newTable(): Promise<string>;
  stop(): Promise<void>;
}

let tables = 0;

export async function startTestDynamo(): Promise<TestDynamo> {
  const emulator = await startDynamo({ port: 0 });
  const client = new DynamoDBClient(localAwsClientConfig(emulator.endpoint, 'us-east-1'));
  return {
    emulator,
    client,
    async newTable() {
      const name = `tally-test-${process.pid}-${++tables}`;
      await ensureTable(client, name);
      return name;
    },
    async stop() {
      client.destroy();
      await emulator.stop();
    },
  };
}

/**
 * A client that forwards to the real one but fails on demand: `failWhen(cmd)` returning true makes
 * that call throw as a network fault would, after or instead of reaching DynamoDB.
 */
export function faultyClient(real: DynamoDBClient, failWhen: (cmdName: string, input: Record<string, unknown>, n: number) => boolean): DynamoDBClient {
  let n = 0;
  return {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      if (failWhen(cmd.constructor.name, cmd.input, ++n)) {
        const err = new Error('injected fault: connection reset');
        err.name = 'TimeoutError';
        throw err;
      }
      return real.send(cmd as never);
    },
  } as unknown as DynamoDBClient;
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

export const storeFor = (client: DynamoDBClient, tableName: string): DynamoUsageStore => new DynamoUsageStore(client, { tableName, concurrency: 8 });
