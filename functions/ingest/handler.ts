/**
 * The ingest Lambda: a thin middy wrapper over {@link createIngest}. The same factory serves
 * Lambda (index.ts), `npm start` and the tests, each with its own queue.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { createKeyChecker } from '../../src/ingest/auth';
import { createIngest, type IngestDeps } from '../../src/ingest/ingest';
import { httpErrors } from '../../src/http/errors';
import { json } from '../../src/http/response';
import { METRICS, MetricUnit } from '../../src/observability';
import type { EventQueue } from '../../src/queue/types';

export interface IngestHandlerDeps {
  queue: EventQueue;
  apiKeys: readonly string[];
  logger?: Logger;
  metrics?: Metrics;
  limits?: IngestDeps['limits'];
  now?: () => number;
}

export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

const POSTHOG_OK = json(200, { status: 1 });

export function createIngestHandler(deps: IngestHandlerDeps): ApiHandler {
  const ingest = createIngest({ queue: deps.queue, checkKey: createKeyChecker(deps.apiKeys), limits: deps.limits, now: deps.now });
  const { metrics, logger } = deps;
  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>({ timeoutEarlyInMillis: 0 })
    .use(
      httpErrors({
        logger,
        onReject: (err) => {
          if (!metrics) return;
          if (err.statusCode === 503) {
            metrics.addMetric(METRICS.QueueSendFailures, MetricUnit.Count, 1);
            return;
          }
          const m = metrics.singleMetric();
          m.addDimension('reason', err.code);
          m.addMetric(METRICS.RequestsRejected, MetricUnit.Count, 1);
        },
      }),
    )
    .handler(async (event) => {
      const r = await ingest(event);
      metrics?.addMetric(METRICS.EventsAccepted, MetricUnit.Count, r.events.length);
      metrics?.addMetric(METRICS.QueueSendLatency, MetricUnit.Milliseconds, r.queueMs);
      return r.route === 'native' ? json(202, { accepted: r.events.length }) : POSTHOG_OK;
    });
  if (!metrics) return handler as unknown as ApiHandler;
  return async (event, context) => {
    try {
      return await handler(event, context);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
