/**
 * examples/express, as a user runs it: the tutorial's app with one app.use, against the tally stand-in.
 */
import type { AddressInfo } from 'node:net';
import { createTally } from '../../client/src';
import { createApp } from '../../examples/express/app';
import { startTallyStandin } from '../support/tally-standin';

it('tracks the tutorial routes with one app.use: big_route per id on /big/:id, api_call otherwise', async () => {
  const standin = await startTallyStandin({ key: 'k' });
  const tally = createTally({ url: standin.url, key: 'k' });
  const server = createApp(tally).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    expect(await (await fetch(`${base}/big/user-7`)).text()).toMatch(/^Welcome to the big route, user-7/);
    expect(await (await fetch(`${base}/`)).text()).toBe('Hello World!');
    expect((await fetch(`${base}/big/user-8`)).status).toBe(200);
    await tally.flush();
    expect(standin.requests.flatMap((r) => r.events).map((e) => [e.distinctId, e.event, (e.properties as { route: string }).route])).toEqual([
      ['user-7', 'big_route', '/big/:id'],
      ['anonymous', 'api_call', '/'],
      ['user-8', 'big_route', '/big/:id'],
    ]);
  } finally {
    server.closeAllConnections();
    server.close();
    await tally.shutdown();
    await standin.stop();
  }
});
