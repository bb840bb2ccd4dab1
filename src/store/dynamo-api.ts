/**
 * The five DynamoDB operations the store uses, behind one small interface, so the store runs over
 * either the AWS SDK v3 client ({@link SdkDynamoApi}, the reference) or the SDK-free JSON-protocol
 * client (dynamo-fast.ts, what the functions use). Inputs and outputs are the SDK's low-level shapes
 * (attribute values such as `{ S: "x" }`, `{ N: "1" }`, `{ B: Uint8Array }`).
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type DeleteItemCommandInput,
  type DeleteItemCommandOutput,
  type DynamoDBClient,
  type GetItemCommandInput,
  type GetItemCommandOutput,
  type PutItemCommandInput,
  type PutItemCommandOutput,
  type QueryCommandInput,
  type QueryCommandOutput,
  type UpdateItemCommandInput,
  type UpdateItemCommandOutput,
} from '@aws-sdk/client-dynamodb';

type Out<T> = Omit<T, '$metadata'>;

/** What the store needs from DynamoDB. A failed condition rejects with an error named `ConditionalCheckFailedException`. */
export interface DynamoApi {
  putItem(input: PutItemCommandInput): Promise<Out<PutItemCommandOutput>>;
  getItem(input: GetItemCommandInput): Promise<Out<GetItemCommandOutput>>;
  updateItem(input: UpdateItemCommandInput): Promise<Out<UpdateItemCommandOutput>>;
  deleteItem(input: DeleteItemCommandInput): Promise<Out<DeleteItemCommandOutput>>;
  query(input: QueryCommandInput): Promise<Out<QueryCommandOutput>>;
}

/** The operation names, as DynamoDB's `X-Amz-Target` and the SDK's commands spell them. */
export const DYNAMO_OPERATIONS = { putItem: 'PutItem', getItem: 'GetItem', updateItem: 'UpdateItem', deleteItem: 'DeleteItem', query: 'Query' } as const;
export type DynamoOperation = keyof typeof DYNAMO_OPERATIONS;

/** {@link DynamoApi} over the AWS SDK v3 client: the benchmark's reference and the mockable path of unit tests. */
export class SdkDynamoApi implements DynamoApi {
  constructor(readonly client: DynamoDBClient) {}
  putItem(input: PutItemCommandInput) {
    return this.client.send(new PutItemCommand(input));
  }
  getItem(input: GetItemCommandInput) {
    return this.client.send(new GetItemCommand(input));
  }
  updateItem(input: UpdateItemCommandInput) {
    return this.client.send(new UpdateItemCommand(input));
  }
  deleteItem(input: DeleteItemCommandInput) {
    return this.client.send(new DeleteItemCommand(input));
  }
  query(input: QueryCommandInput) {
    return this.client.send(new QueryCommand(input));
  }
}
