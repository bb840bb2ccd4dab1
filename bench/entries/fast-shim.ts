/**
 * Bench-only stand-ins for `src/queue/sqs` and `src/runtime`'s `createSqsClient`, swapped into the real
 * functions/ingest/index.ts by the cold-start bench (an esbuild plugin) to build "ingest with sqs-fast":
 * the same entry point, with FastSqsEventQueue instead of the AWS SDK SQS client. Not deployed.
 */
import { FastSqsEventQueue } from '../../src/queue/sqs-fast';

interface ClientConfig {
  region: string;
  endpoint?: string;
}

export function createSqsClient(c: { AWS_REGION: string; TALLY_SQS_ENDPOINT?: string }): ClientConfig {
  return { region: c.AWS_REGION, ...(c.TALLY_SQS_ENDPOINT ? { endpoint: c.TALLY_SQS_ENDPOINT } : {}) };
}

export class SqsEventQueue extends FastSqsEventQueue {
  constructor(client: ClientConfig, opts: { queueUrl: string; maxMessageBytes?: number }) {
    super({ ...opts, region: client.region, ...(client.endpoint ? { endpoint: client.endpoint } : {}) });
  }
}
