/** Lambda entry point: roll-up and outbox delivery (EventBridge schedule, every minute). */
import { loadAggregatorConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { createRollupDeps } from '../../src/runtime/posthog';
import { lazy } from '../lazy';
import { createRollupHandler } from './handler';

const logger = createLogger(SERVICES.rollup);

// The PostHog key is optional here: without it the roll-up still moves the counters and PostHog events
// wait in the outbox; lazy() retries the secret and rebuilds the handler once it resolves.
export const handler = lazy(
  () =>
    createRollupHandler({
      ...createRollupDeps(loadAggregatorConfig()),
      logger,
      metrics: createMetrics(SERVICES.rollup, logger),
    }),
  { optionalSecrets: ['POSTHOG_API_KEY'], log: (message, error) => logger.error(message, { error: String(error) }) },
);
