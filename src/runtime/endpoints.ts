/**
 * Endpoints and credentials shared by the AWS clients of src/runtime/: the real AWS in Lambda (the
 * partition's public endpoint, src/aws/endpoints.ts), an endpoint from `AWS_ENDPOINT_URL_<SERVICE>` /
 * `AWS_ENDPOINT_URL` (as the AWS SDKs honour them), or a local emulator (dynalite, fauxqs) in `npm start`
 * and the tests.
 */
import type { AwsCredentials } from '../aws/sigv4';

/** The config fields the builders read (src/config.ts validates them). */
export interface AwsEndpoints {
  AWS_REGION: string;
  /** `json` (default) or `sdk`: which implementation of the queue and DynamoDB interfaces to build. */
  TALLY_AWS_CLIENT?: 'json' | 'sdk';
  /** Local emulators: signed with any credentials. */
  TALLY_SQS_ENDPOINT?: string;
  TALLY_DYNAMODB_ENDPOINT?: string;
  AWS_ENDPOINT_URL?: string;
  AWS_ENDPOINT_URL_SQS?: string;
  AWS_ENDPOINT_URL_DYNAMODB?: string;
  AWS_ENDPOINT_URL_SECRETS_MANAGER?: string;
}

/** Local endpoints take any credentials; in AWS the default provider chain applies. */
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Where one service is called, and with which credentials when they are not the environment's. */
export interface ServiceEndpoint {
  /** Unset: the partition's public endpoint. */
  endpoint?: string;
  credentials?: AwsCredentials;
}

/** A local emulator's endpoint (any credentials), else `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`. */
export function endpointFor(service: 'sqs' | 'dynamodb' | 'secretsmanager', c: AwsEndpoints): ServiceEndpoint {
  const local = service === 'sqs' ? c.TALLY_SQS_ENDPOINT : service === 'dynamodb' ? c.TALLY_DYNAMODB_ENDPOINT : undefined;
  if (local) return { endpoint: local, credentials: localCredentials };
  const specific = service === 'sqs' ? c.AWS_ENDPOINT_URL_SQS : service === 'dynamodb' ? c.AWS_ENDPOINT_URL_DYNAMODB : c.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  const endpoint = specific ?? c.AWS_ENDPOINT_URL;
  return endpoint ? { endpoint } : {};
}

/** Settings the tests tighten (fewer attempts, shorter backoff); production uses the defaults. */
export interface ClientTuning {
  maxAttempts?: number;
  requestTimeoutMs?: number;
  retryBaseMs?: number;
}
