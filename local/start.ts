/**
 * `npm start`: tally on one machine, no AWS account, no Docker. See README "Run it locally".
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, loadLocalConfig } from '../src/config';
import { postHogSinkFor } from '../src/runtime/posthog';
import { PrintSink } from '../src/sink/print';
import { localSampling } from './sampling';
import { startLocalStack } from './stack';

async function main(): Promise<void> {
  const c = loadLocalConfig();
  const dataDir = resolve(c.TALLY_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });

  // The local key: from the environment, else made once and kept with the data.
  const keyFile = join(dataDir, 'local-api-key');
  let apiKey = c.TALLY_API_KEY;
  if (!apiKey) {
    if (!existsSync(keyFile)) writeFileSync(keyFile, `tally_local_${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
    apiKey = readFileSync(keyFile, 'utf8').trim();
  }
  // The master secret of client tokens, likewise (tokens signed before a restart stay valid).
  const tokenSecretFile = join(dataDir, 'token-secret');
  let tokenSecret = c.TALLY_TOKEN_SECRET;
  if (!tokenSecret) {
    if (!existsSync(tokenSecretFile)) writeFileSync(tokenSecretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    tokenSecret = readFileSync(tokenSecretFile, 'utf8').trim();
  }

  const jsonl = join(dataDir, 'posthog-events.jsonl');
  const sink = c.POSTHOG_API_KEY
    ? postHogSinkFor(c, { key: c.POSTHOG_API_KEY, host: c.POSTHOG_HOST })
    : new PrintSink(jsonl);

  const { sampling, samplingLine } = localSampling(c, dataDir);

  const stack = await startLocalStack({
    sampling,
    port: c.PORT,
    dataDir,
    apiKey,
    tokenSecret,
    sink,
    // A project with its own PostHog (projects create --posthog-key --posthog-host) gets its events there.
    projectSink: (d) => postHogSinkFor(c, d),
    batchSize: c.TALLY_BATCH_SIZE,
    batchWindowMs: c.TALLY_BATCH_WINDOW_SECONDS * 1000,
    windowSeconds: c.TALLY_WINDOW_SECONDS,
    graceSeconds: c.TALLY_GRACE_SECONDS,
    staleSeconds: c.TALLY_CLAIM_STALE_SECONDS,
    dimensions: c.TALLY_DIMENSIONS,
    shards: c.TALLY_SHARDS,
    frontDoor: c.TALLY_FRONT_DOOR,
    corsOrigins: c.TALLY_CORS_ORIGINS,
    maxEventAgeDays: c.TALLY_MAX_EVENT_AGE_DAYS,
    log: (line) => console.error(line),
    onReport: (r) => {
      if (r.counted + r.duplicates + r.failures.length > 0) {
        console.log(`aggregated ${r.counted} message(s), ${r.calls} call(s) in ${r.deltas} delta(s)` + (r.duplicates ? `, ${r.duplicates} duplicate(s)` : '') + (r.failures.length ? `, ${r.failures.length} to retry` : ''));
      }
    },
    onRollup: (r) => {
      if (r.units > 0) console.log(`rolled up ${r.units} window unit(s): ${r.calls} call(s), ${r.counterWrites} counter write(s), ${r.events} PostHog event(s) queued`);
      if (r.sent + r.failed + r.rejected > 0) console.log(`PostHog: ${r.sent} event(s) delivered` + (r.failed ? `, ${r.failed} kept in the outbox for a retry` : '') + (r.rejected ? `, ${r.rejected} refused and kept aside` : ''));
    },
  });

  // Where this instance is, for the CLI (npm run tally) and other tools of this checkout.
  writeFileSync(join(dataDir, 'stack.json'), `${JSON.stringify({ pid: process.pid, url: stack.url, dynamoEndpoint: stack.dynamoEndpoint, tableName: stack.tableName, region: 'us-east-1' }, null, 2)}\n`);
  console.log(`
tally is running at ${stack.url}
  Usage page: ${stack.url}/#key=${apiKey}
  API key:   ${apiKey}   (${c.TALLY_API_KEY ? 'from TALLY_API_KEY' : `kept in ${keyFile}`}; project default, every scope)
  Projects:  npm run tally -- projects list     (keys, client tokens, limits: README "Projects and keys")
  data:      ${dataDir}  (DynamoDB ${stack.dynamoEndpoint}, SQS ${stack.sqsEndpoint})
  PostHog:   ${c.POSTHOG_API_KEY ? c.POSTHOG_HOST : `not configured: batch events are printed and appended to ${jsonl}`}
  Windows:   ${c.TALLY_WINDOW_SECONDS} s, rolled up ${c.TALLY_GRACE_SECONDS} s after they close${c.TALLY_DIMENSIONS.length ? `; dimensions ${c.TALLY_DIMENSIONS.join(', ')}` : ''} (counts are queryable at once)
  Sampling:  ${samplingLine}

Try it:
  curl -s -X POST ${stack.url}/v1/usage -H 'authorization: Bearer ${apiKey}' \\
    -H 'content-type: application/json' -d '{"distinctId":"user-1","event":"big_route"}'
  curl -s '${stack.url}/v1/usage?event=big_route&granularity=minute' -H 'authorization: Bearer ${apiKey}'
  npm run smoke -- --url ${stack.url} --key ${apiKey}      (what docs/DEPLOY.md runs after a deploy)
`);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: finishing work in flight…`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
