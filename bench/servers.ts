/**
 * Child process: the servers a benchmark talks to over HTTP, kept out of the measured process so that
 * `process.cpuUsage()` there counts only the code under test.
 *
 *   node scripts/run.mjs bench/servers.ts --sqs       fauxqs (SQS JSON protocol)
 *   node scripts/run.mjs bench/servers.ts --dynamo    dynalite (DynamoDB)
 *   node scripts/run.mjs bench/servers.ts --posthog   the PostHog stand-in (records and dedupes events)
 *                                         [--delay-ms 50] answers each request that much later, as a
 *                                         PostHog across the internet would (a delaying proxy in front)
 *
 * Sends `{ready, endpoint}` on its IPC channel; answers `cpu`, `posthog-stats`, `posthog-reset`,
 * `posthog-late` (corrections among an event's unique batch events) and `posthog-down` (`mode`: '503',
 * 'refuse' or false, as the stand-in's setDown).
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDynamo, startSqs, type Emulator } from '../local/emulators';
import { startPosthogStandin, type PosthogStandin } from '../test/support/posthog-standin';
import { argv, serveCommands } from './lib';

export interface PosthogStats {
  /** Capture requests received (any capture path). */
  requests: number;
  /** Events received, duplicates included / unique by uuid. */
  events: number;
  unique: number;
  /** Per event name among unique events: count, and sum of `properties.calls` / `properties.count`. */
  byEvent: Record<string, { events: number; calls: number; count: number }>;
}

/** A proxy that forwards each request `delayMs` after it arrived: a distant server's round trip. */
async function delayingProxy(target: string, delayMs: number): Promise<{ server: Server; url: string }> {
  const t = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        const fwd = request({ hostname: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        fwd.on('error', () => res.destroy());
        fwd.end(Buffer.concat(chunks));
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function main(): Promise<void> {
  const a = argv();
  let emulator: Emulator | undefined;
  let standin: PosthogStandin | undefined;
  if (a.has('sqs')) emulator = await startSqs({ port: 0 });
  else if (a.has('dynamo')) emulator = await startDynamo({ port: 0 });
  else if (a.has('posthog')) standin = await startPosthogStandin({ port: 0, flagDefinitions: { flags: [], group_type_mapping: {}, cohorts: {} } });
  else throw new Error('usage: servers.ts --sqs | --dynamo | --posthog [--delay-ms N]');
  const delayMs = Number(a.get('delay-ms') ?? 0);
  const proxy = standin && delayMs > 0 ? await delayingProxy(standin.url, delayMs) : undefined;

  serveCommands(
    {
      cpu: () => ({ cpu: process.cpuUsage() }),
      'posthog-stats': (): PosthogStats => {
        const s = standin!;
        let requests = 0;
        for (const [p, n] of s.requests) if (!p.startsWith('/flags') && !p.startsWith('/api/') && !p.startsWith('/decide')) requests += n;
        const byEvent: PosthogStats['byEvent'] = {};
        for (const e of s.unique) {
          const b = (byEvent[e.event] ??= { events: 0, calls: 0, count: 0 });
          b.events++;
          if (typeof e.properties.calls === 'number') b.calls += e.properties.calls;
          if (typeof e.properties.count === 'number') b.count += e.properties.count;
        }
        return { requests, events: s.all.length, unique: s.unique.length, byEvent };
      },
      'posthog-reset': () => {
        standin!.reset();
        return {};
      },
      'posthog-late': (m) => ({ late: standin!.unique.filter((e) => e.event === m.event && e.properties.late === true).length }),
      'posthog-down': (m) => {
        standin!.setDown(m.mode as Parameters<PosthogStandin['setDown']>[0]);
        return {};
      },
    },
    async () => {
      proxy?.server.closeAllConnections();
      proxy?.server.close();
      await emulator?.stop();
      await standin?.stop();
    },
  );
  process.send?.({ ready: true, endpoint: emulator?.endpoint ?? proxy?.url ?? standin!.url });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
