/** Lambda entry point: outbox drain (EventBridge schedule). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createPostHogSink, createStore } from '../../src/runtime';
import { lazy } from '../lazy';
import { createOutboxHandler } from './handler';

export const handler = lazy(() => {
  const c = loadAggregatorConfig();
  const sink = createPostHogSink(c);
  if (!sink) throw new Error('POSTHOG_API_KEY (or POSTHOG_API_KEY_SECRET_ARN) is required in AWS');
  return createOutboxHandler({
    store: createStore(c),
    sink,
    staleMs: c.TALLY_CLAIM_STALE_SECONDS * 1000,
    logger: createLogger(SERVICES.outbox),
    metrics: createMetrics(SERVICES.outbox),
  });
});
