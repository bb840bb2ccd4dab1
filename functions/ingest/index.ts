/** Lambda entry point: ingest (API Gateway HTTP API, payload v2). */
import { loadIngestConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { SqsEventQueue } from '../../src/queue/sqs';
import { createSqsClient } from '../../src/runtime';
import { lazy } from '../lazy';
import { createIngestHandler } from './handler';

export const handler = lazy(() => {
  const c = loadIngestConfig();
  return createIngestHandler({
    queue: new SqsEventQueue(createSqsClient(c), { queueUrl: c.TALLY_QUEUE_URL, maxMessageBytes: c.TALLY_MAX_MESSAGE_BYTES }),
    apiKeys: c.TALLY_API_KEYS,
    logger: createLogger(SERVICES.ingest),
    metrics: createMetrics(SERVICES.ingest),
  });
});
