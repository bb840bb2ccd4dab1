/**
 * {@link DynamoApi} over the AWS SDK v3 client (`TALLY_AWS_CLIENT=sdk`, and the benchmark's reference):
 * apart, so functions built with the default JSON client never bundle the SDK. Every call carries the
 * invocation's deadline as its abort signal (src/aws/sdk-deadline.ts).
 */
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
import { sdkSendOptions } from '../aws/sdk-deadline';
import type { DynamoApi } from './dynamo-api';

export class SdkDynamoApi implements DynamoApi {
  constructor(readonly client: DynamoDBClient) {}
  async putItem(input: PutItemCommandInput) {
    return this.client.send(new PutItemCommand(input), sdkSendOptions());
  }
  async getItem(input: GetItemCommandInput) {
    return this.client.send(new GetItemCommand(input), sdkSendOptions());
  }
  async updateItem(input: UpdateItemCommandInput) {
    return this.client.send(new UpdateItemCommand(input), sdkSendOptions());
  }
  async deleteItem(input: DeleteItemCommandInput) {
    return this.client.send(new DeleteItemCommand(input), sdkSendOptions());
  }
  async query(input: QueryCommandInput) {
    return this.client.send(new QueryCommand(input), sdkSendOptions());
  }
  async batchGetItem(input: BatchGetItemCommandInput) {
    return this.client.send(new BatchGetItemCommand(input), sdkSendOptions());
  }
}
