/**
 * {@link DynamoApi} without the AWS SDK: DynamoDB's JSON protocol (`X-Amz-Target: DynamoDB_20120810.*`)
 * through src/aws/json-client.ts (keep-alive agent, SigV4 by `node:crypto`). The same requests the SDK
 * sends, at a fraction of its CPU per call (docs/PERFORMANCE.md, section 3); the aggregator makes ~3 per
 * tracked call, so this is most of its CPU.
 *
 * Binary attribute values travel as base64 in JSON: `Uint8Array`s in requests are encoded, and `B`
 * values in answers are decoded to `Buffer`s, as the SDK does. Errors reject with an error whose `name`
 * is DynamoDB's error type (`ConditionalCheckFailedException`, …). Throttling, 5xx, timeouts and
 * network errors are retried by the transport (`maxAttempts` in all, jittered exponential backoff, a retry
 * budget, clock-skew correction, never past the invocation's deadline), as the SDK client of
 * src/runtime/dynamo-sdk.ts is configured to. `TALLY_AWS_CLIENT=sdk` swaps that client in (src/runtime/store.ts).
 */
import { AwsJsonClient, type AwsJsonClientOptions } from '../aws/json-client';
import type { AwsCredentials } from '../aws/sigv4';
import { DYNAMO_OPERATIONS, type DynamoApi } from './dynamo-api';

export interface DynamoJsonOptions {
  region: string;
  /** Default: the partition's (`https://dynamodb.<region>.amazonaws.com/`, `.com.cn` in China). */
  endpoint?: string;
  /** Default: from the environment, as Lambda sets it. */
  credentials?: AwsCredentials | (() => AwsCredentials);
  /** Attempts per call for throttling, 5xx, timeouts and network errors. */
  maxAttempts: number;
  /** Per attempt. */
  requestTimeoutMs: number;
  /** First backoff; doubled each attempt, with full jitter. */
  retryBaseMs: number;
  maxSockets: number;
}

export const dynamoJsonDefaults = { maxAttempts: 5, requestTimeoutMs: 5000, retryBaseMs: 50, maxSockets: 64 } as const;

/** JSON.stringify replacer: binary values as base64 (`this[key]` is the value before Buffer#toJSON). */
function encodeBinary(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
}

/** JSON.parse reviver: `{ "B": "<base64>" }` attribute values as Buffers. Only a binary value is a string under a `B` key. */
function decodeBinary(key: string, value: unknown): unknown {
  return key === 'B' && typeof value === 'string' ? Buffer.from(value, 'base64') : value;
}

type Api = { [K in keyof DynamoApi]: DynamoApi[K] };

export class DynamoJsonApi implements DynamoApi {
  readonly client: AwsJsonClient;

  constructor(opts: Partial<DynamoJsonOptions> & { region: string }) {
    const o = { ...dynamoJsonDefaults, ...opts };
    const c: Partial<AwsJsonClientOptions> & { service: string; region: string } = {
      service: 'dynamodb',
      region: o.region,
      endpoint: o.endpoint,
      credentials: o.credentials,
      maxAttempts: o.maxAttempts,
      requestTimeoutMs: o.requestTimeoutMs,
      retryBaseMs: o.retryBaseMs,
      maxSockets: o.maxSockets,
    };
    this.client = new AwsJsonClient(c);
  }

  private op<I, O>(name: string): (input: I) => Promise<O> {
    const target = `DynamoDB_20120810.${name}`;
    return (input) => this.client.callWithRetries<O>(target, JSON.stringify(input, encodeBinary), decodeBinary);
  }

  readonly putItem: Api['putItem'] = this.op(DYNAMO_OPERATIONS.putItem);
  readonly getItem: Api['getItem'] = this.op(DYNAMO_OPERATIONS.getItem);
  readonly updateItem: Api['updateItem'] = this.op(DYNAMO_OPERATIONS.updateItem);
  readonly deleteItem: Api['deleteItem'] = this.op(DYNAMO_OPERATIONS.deleteItem);
  readonly query: Api['query'] = this.op(DYNAMO_OPERATIONS.query);
  readonly batchGetItem: Api['batchGetItem'] = this.op(DYNAMO_OPERATIONS.batchGetItem);

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    this.client.destroy();
  }
}
