/**
 * Endpoints and credentials shared by the AWS clients of src/runtime/: the real AWS in Lambda, a local
 * emulator (dynalite, fauxqs) in `npm start` and the tests.
 */
export interface AwsEndpoints {
  AWS_REGION: string;
  TALLY_SQS_ENDPOINT?: string;
  TALLY_DYNAMODB_ENDPOINT?: string;
}

/** Local endpoints take any credentials; in AWS the default provider chain applies. */
export const localCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };
