/** Lambda entry point: usage queries and health (API Gateway HTTP API or Function URL, payload v2). */
import { loadQueryConfig } from '../../src/config';
import { createLogger, createMetrics, SERVICES } from '../../src/observability';
import { ConfiguredKeysImport, createProjectServices } from '../../src/runtime/projects';
import { createDynamoApi, createStore } from '../../src/runtime/store';
import { lazy } from '../lazy';
import { createQueryHandler } from './handler';

export const handler = lazy(async () => {
  const c = loadQueryConfig();
  const logger = createLogger(SERVICES.query);
  const log = (level: 'warn' | 'error', message: string, extra?: Record<string, unknown>) => logger[level](message, extra ?? {});
  const db = createDynamoApi(c);
  const projects = createProjectServices({ db, tableName: c.TALLY_TABLE_NAME, deploymentOrigins: c.TALLY_CORS_ORIGINS, log });
  const imported = new ConfiguredKeysImport(projects.admin, c.TALLY_API_KEYS, log);
  await imported.run();
  return imported.wrap(
    createQueryHandler({
      store: createStore(c, db),
      auth: projects.auth,
      cors: projects.cors,
      dimensions: c.TALLY_DIMENSIONS,
      shards: c.TALLY_SHARDS,
      logger,
      metrics: createMetrics(SERVICES.query, logger),
    }),
  );
});
