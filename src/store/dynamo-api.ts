/**
 * The DynamoDB operations the store uses, behind one small interface, so the store runs over either
 * tally's own JSON-protocol client (dynamo-json.ts, the default) or the AWS SDK v3 client (dynamo-sdk.ts),
 * as `TALLY_AWS_CLIENT` chooses (src/runtime/store.ts). Inputs and outputs are the SDK's low-level shapes
 * (attribute values such as `{ S: "x" }`, `{ N: "1" }`, `{ B: Uint8Array }`).
 */
// Types only: a value import of the SDK here would put its lazily loaded credential chunks into every
// bundle that uses the store (esbuild emits a chunk for each dynamic import in the module graph).
import type {
  BatchGetItemCommandInput,
  BatchGetItemCommandOutput,
  DeleteItemCommandInput,
  DeleteItemCommandOutput,
  GetItemCommandInput,
  GetItemCommandOutput,
  PutItemCommandInput,
  PutItemCommandOutput,
  QueryCommandInput,
  QueryCommandOutput,
  UpdateItemCommandInput,
  UpdateItemCommandOutput,
} from '@aws-sdk/client-dynamodb';

type Out<T> = Omit<T, '$metadata'>;

/** What the store needs from DynamoDB. A failed condition rejects with an error named `ConditionalCheckFailedException`. */
export interface DynamoApi {
  putItem(input: PutItemCommandInput): Promise<Out<PutItemCommandOutput>>;
  getItem(input: GetItemCommandInput): Promise<Out<GetItemCommandOutput>>;
  updateItem(input: UpdateItemCommandInput): Promise<Out<UpdateItemCommandOutput>>;
  deleteItem(input: DeleteItemCommandInput): Promise<Out<DeleteItemCommandOutput>>;
  query(input: QueryCommandInput): Promise<Out<QueryCommandOutput>>;
  /** Up to 100 keys; keys DynamoDB did not get to come back in `UnprocessedKeys`. */
  batchGetItem(input: BatchGetItemCommandInput): Promise<Out<BatchGetItemCommandOutput>>;
}

/** The operation names, as DynamoDB's `X-Amz-Target` and the SDK's commands spell them. */
export const DYNAMO_OPERATIONS = { putItem: 'PutItem', getItem: 'GetItem', updateItem: 'UpdateItem', deleteItem: 'DeleteItem', query: 'Query', batchGetItem: 'BatchGetItem' } as const;
export type DynamoOperation = keyof typeof DYNAMO_OPERATIONS;

/**
 * `api` with `before(operation, input)` run ahead of every call: counting in the benchmark, fault
 * injection in tests (a throw fails the call before it reaches DynamoDB).
 */
export function beforeEachCall(api: DynamoApi, before: (operation: (typeof DYNAMO_OPERATIONS)[DynamoOperation], input: Record<string, unknown>) => void): DynamoApi {
  const wrap =
    <K extends DynamoOperation>(op: K) =>
    (input: Parameters<DynamoApi[K]>[0]) => {
      before(DYNAMO_OPERATIONS[op], input as unknown as Record<string, unknown>);
      return (api[op] as (i: typeof input) => ReturnType<DynamoApi[K]>)(input);
    };
  return { putItem: wrap('putItem'), getItem: wrap('getItem'), updateItem: wrap('updateItem'), deleteItem: wrap('deleteItem'), query: wrap('query'), batchGetItem: wrap('batchGetItem') } as DynamoApi;
}
