/**
 * The AWS SDK v3 half of the DynamoDB builder (`TALLY_AWS_CLIENT=sdk`): reached only through the dynamic
 * import in ./store.ts, so a function built with the default `json` clients never loads the SDK's
 * DynamoDB client (the Lambda build splits it into its own chunk).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SdkDynamoApi } from '../store/dynamo-sdk';
import { endpointFor, type AwsEndpoints, type ClientTuning } from './endpoints';

/** The SDK's DynamoDB client for the config: 5 attempts, the same per-attempt timeout as the JSON client. */
export function createDynamoClient(c: AwsEndpoints, t: ClientTuning = {}): DynamoDBClient {
  const { endpoint, credentials } = endpointFor('dynamodb', c);
  return new DynamoDBClient({
    region: c.AWS_REGION,
    maxAttempts: t.maxAttempts ?? 5,
    requestHandler: { requestTimeout: t.requestTimeoutMs ?? 5000, connectionTimeout: t.requestTimeoutMs ?? 5000 },
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

/** {@link SdkDynamoApi} with its own client; `destroy()` closes the client's sockets. */
export function createSdkDynamoApi(c: AwsEndpoints, t: ClientTuning = {}): SdkDynamoApi & { destroy(): void } {
  const client = createDynamoClient(c, t);
  return Object.assign(new SdkDynamoApi(client), { destroy: () => client.destroy() });
}
