/** {@link DynamoApi} over the AWS SDK v3 client (the benchmark's reference): apart, so the functions never bundle the SDK. */
import {
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type BatchGetItemCommandInput,
  type DeleteItemCommandInput,
  type DynamoDBClient,
  type GetItemCommandInput,
  type PutItemCommandInput,
  type QueryCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { DynamoApi } from './dynamo-api';

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
  batchGetItem(input: BatchGetItemCommandInput) {
    return this.client.send(new BatchGetItemCommand(input));
  }
}
