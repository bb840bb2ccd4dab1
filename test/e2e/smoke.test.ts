/**
 * The post-deploy smoke test (smoke/checks.ts, `npm run smoke`) runs green against `npm start`'s stack,
 * with each front door the stack can play: API Gateway's routes, and the Function URL (one function for
 * every route). Every check is a real client over real HTTP; the counts are read back after the
 * aggregator's run.
 */
import { startLocalStack, type LocalStack } from '../../local/stack';
import { PrintSink } from '../../src/sink/print';
import { runSmoke } from '../../smoke/checks';

jest.setTimeout(120_000);

const KEY = 'tally_smoke_key_0123456789';
const ORIGIN = 'https://app.example.com';

describe.each(['http-api', 'function-url'] as const)('against npm start, front door %s', (frontDoor) => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, apiKey: KEY, sink: new PrintSink(undefined, () => undefined), batchWindowMs: 200, corsOrigins: [ORIGIN], frontDoor });
  });
  afterAll(async () => stack?.stop());

  it('every check passes, and the counts come back exact', async () => {
    const results = await runSmoke({ url: stack.url, key: KEY, origin: ORIGIN, countTimeoutMs: 60_000 });
    const failed = results.filter((r) => !r.pass);
    expect(failed).toEqual([]);
    const names = results.map((r) => r.name);
    for (const route of ['/batch', '/batch/', '/capture', '/capture/', '/e', '/e/', '/i/v0/e', '/i/v0/e/', '/track', '/track/']) expect(names).toContain(`capture route POST ${route}`);
    expect(results.find((r) => r.name.startsWith('counts read back'))!.detail).toMatch(/^total 39 of 39 expected$/) // 5 posthog-node + 3 posthog-js + 10 routes + 1 + 20 native;
  });

  it('fails loudly where tally is wrong: a key the stack does not know fails the checks that need one', async () => {
    const results = await runSmoke({ url: stack.url, key: 'not-the-key-12345', countTimeoutMs: 2000 });
    const byName = Object.fromEntries(results.map((r) => [r.name, r.pass]));
    expect(byName['native single event (POST /v1/usage)']).toBe(false);
    expect(byName['health']).toBe(true);
    expect(results.some((r) => !r.pass)).toBe(true);
  });
});
