/**
 * Runs the example API on PORT (default 8080), tracked in tally:
 *
 *   npm start                       # tally on http://127.0.0.1:3000, key in .tally/local-api-key
 *   npm run example:express         # this API on http://127.0.0.1:8080
 *   curl localhost:8080/big/user-1  # then: curl "localhost:3000/v1/usage?event=big_route&granularity=minute" -H "authorization: Bearer $(cat .tally/local-api-key)"
 *
 * TALLY_URL (default http://127.0.0.1:3000), TALLY_API_KEY (default: .tally/local-api-key),
 * TALLY_SPOOL (a directory: crash-safe spool; default off).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createTally } from '../../client/src';
import { createApp } from './app';

const url = process.env.TALLY_URL ?? 'http://127.0.0.1:3000';
const key = process.env.TALLY_API_KEY ?? (existsSync('.tally/local-api-key') ? readFileSync('.tally/local-api-key', 'utf8').trim() : '');
if (!key) {
  console.error('Set TALLY_API_KEY, or run `npm start` first (it writes .tally/local-api-key).');
  process.exit(1);
}

const tally = createTally({ url, key, ...(process.env.TALLY_SPOOL ? { spool: process.env.TALLY_SPOOL } : {}) });
const port = Number(process.env.PORT ?? 8080);
const server = createApp(tally).listen(port, '127.0.0.1', () => console.log(`example API on http://127.0.0.1:${port}, tracked in tally at ${url}`));

// Deliver what is buffered before exiting.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    void tally.shutdown().then(({ pending }) => {
      console.log(`tally: ${JSON.stringify(tally.stats())}${pending ? ` (${pending} not delivered)` : ''}`);
      process.exit(0);
    });
  });
}
