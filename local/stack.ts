/**
 * The whole pipeline in one process, with the same handlers as in AWS: an HTTP front building API
 * Gateway v2 events, dynalite (DynamoDB wire protocol), fauxqs (SQS wire protocol), a poller that
 * behaves like the SQS event source, and the roll-up job (roll-up and outbox delivery) on a timer. `npm start` and the end-to-end
 * tests both use it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createAggregatorHandler } from '../functions/aggregator/handler';
import { createIngestHandler } from '../functions/ingest/handler';
import { createRollupHandler } from '../functions/rollup/handler';
import { createQueryHandler } from '../functions/query/handler';
import type { RunReport } from '../src/aggregate/aggregator';
import { allRoutes } from '../src/http/all-routes';
import { apiGatewayRoutes } from '../src/http/route-table';
import type { RollupReport } from '../src/rollup/rollup';
import { allShards } from '../src/store/keys';
import { aggregationWindow } from '../src/windows';
import { createDynamoApi } from '../src/runtime/store';
import { createProjectServices, type ProjectServices } from '../src/runtime/projects';
import { projectSinks } from '../src/rollup/sinks';
import { PostHogNodeSink } from '../src/sink/posthog';
import type { DynamoApi } from '../src/store/dynamo-api';
import { createEventQueue } from '../src/runtime/queue';
import type { PostHogSink } from '../src/sink/types';
import { createSampling, type IngestSampling } from '../src/sampling';
import type { PersonPropertyMapping } from '../src/sampling/person';
import { DynamoUsageStore } from '../src/store/dynamo';
import { AGGREGATOR, INGEST, QUERY, ROLLUP } from '../lib/sizing';
import { startFront, type Front } from './apigw';
import { startPosthogStandin, type PosthogStandin } from './posthog-standin';
import { ensureResources, startDynamo, startSqs, type Emulator } from './emulators';
import { createLambdaContext, SqsPoller } from './poller';
import { createUsagePage, RecentEvents, recordingSink, USAGE_PAGE_ROUTES } from './usage-page';

export interface LocalStackOptions {
  port: number;
  /** Persist DynamoDB and SQS data here; in memory when unset. */
  dataDir?: string;
  /** The local key: imported as a key of project `default` (every scope) at start, like `TALLY_API_KEYS`. */
  apiKey: string;
  /** Master secret of client tokens (`TALLY_TOKEN_SECRET`); default: a random one for this run. */
  tokenSecret?: string;
  /** How long a key or project is answered from memory (default 30 s, as in Lambda): tests shorten it. */
  keyCacheTtlMs?: number;
  /** How old a project's month total may be before its quota reads it again (default one minute). */
  quotaMaxAgeMs?: number;
  /** Wraps the DynamoDB client of the key store (tests inject faults to take it down). */
  keyStoreApi?: (api: DynamoApi) => DynamoApi;
  /** The deployment's PostHog: where batch events of projects without their own go. */
  sink: PostHogSink;
  /** A sink for a project's own PostHog (default: posthog-node to its host with its key). */
  projectSink?: (destination: { key: string; host: string }) => PostHogSink;
  batchSize: number;
  batchWindowMs: number;
  /** Concurrent aggregator invocations. */
  concurrency: number;
  /**
   * DynamoDB requests each aggregator run keeps in flight (AWS: 32, and here too). dynalite serves one
   * at a time, but with the 2 cores shared by the front, ingest, fauxqs and a load generator, 8 left it
   * waiting between answers: at 1,500 single-event requests/s for 15 s the queue drained 4.9–8.3 s after
   * the load at 8, 1.6–4.3 s at 32, for an ingest p99 of 89–97 ms at 8 and 111–116 ms at 32 (6 runs each,
   * interleaved). (With the AWS SDK clients, before counting v2, 32 had cost an Artillery run a p99 of
   * 821 ms against 191 ms at 8.)
   */
  dynamoConcurrency: number;
  /** Queue visibility timeout: how long a failed message waits before it is retried. */
  visibilityTimeoutSeconds: number;
  /** Claims older than this are taken over (at least half the grace; below the visibility timeout). */
  staleSeconds: number;
  maxReceiveCount: number;
  /** Aggregation window (`TALLY_WINDOW_SECONDS`) and the grace before a window is rolled up (`TALLY_GRACE_SECONDS`). */
  windowSeconds: number;
  graceSeconds: number;
  /** Event properties that split the counters (`TALLY_DIMENSIONS`). */
  dimensions: readonly string[];
  /** Per-user roll-up shards (`TALLY_SHARDS`). */
  shards: number;
  /** Days minute and hour resolution is kept (`TALLY_MINUTE_TTL_DAYS`; dynalite has no TTL, so locally nothing expires). */
  hourTtlDays: number;
  /** How often the roll-up job (roll-up and outbox delivery) runs: AWS runs it every minute. */
  rollupIntervalMs: number;
  region: string;
  onReport?: (r: RunReport) => void;
  onRollup?: (r: RollupReport) => void;
  log?: (line: string) => void;
  /** Sampling with a PostHog feature flag in ingest (docs/SAMPLING.md). Unset: off, and the flag routes answer 503. */
  sampling?: LocalSamplingOptions;
  /**
   * The front door to play: `http-api` routes by the route table's API Gateway route keys (a path no route
   * declares is API Gateway's 404); `function-url` sends every request to ingest, which serves every route
   * (src/http/all-routes.ts), as the Function URL does.
   */
  frontDoor?: 'http-api' | 'function-url';
  /** Browser origins every project allows (`TALLY_CORS_ORIGINS`, src/http/cors.ts), besides each project's own. Default: none. */
  corsOrigins?: readonly string[];
  /** Oldest event time accepted, in days (`TALLY_MAX_EVENT_AGE_DAYS`). */
  maxEventAgeDays?: number;
}

/**
 * Where the ingest function's PostHog is, locally. With `posthog`, that PostHog (sampling needs its
 * `personalKey`; without one only the flag routes are forwarded). Without it, a local endpoint on its
 * own port serves `flagsFile` as the flag definitions, records raw sampled events (in memory and in
 * `capturedFile`) and evaluates `/flags` locally.
 */
export interface LocalSamplingOptions {
  posthog?: { host: string; projectKey: string; personalKey?: string };
  flagsFile?: string;
  capturedFile?: string;
  flagKey?: string;
  personProperties?: PersonPropertyMapping;
  /** Bound of the raw capture, each definitions request and the cold-start wait. */
  timeoutMs?: number;
  pollSeconds?: number;
  flagsProxyTimeoutMs?: number;
  /** How posthog-node's raw captures go out (`POSTHOG_HTTP`): tally's node:http fetch (default) or the global one. */
  posthogHttp?: 'node' | 'fetch';
}

export const localStackDefaults = {
  port: 3000,
  batchSize: 1000,
  batchWindowMs: 1000,
  concurrency: 2,
  dynamoConcurrency: 32,
  visibilityTimeoutSeconds: 30,
  staleSeconds: 30,
  maxReceiveCount: 5,
  windowSeconds: 60,
  graceSeconds: 60,
  dimensions: [] as readonly string[],
  shards: 8,
  hourTtlDays: 14,
  rollupIntervalMs: 2000,
  region: 'us-east-1',
} satisfies Partial<LocalStackOptions>;

export interface LocalStack {
  url: string;
  apiKey: string;
  /** Projects and keys of this stack: the same store, cache and limits ingest and query use. */
  projects: ProjectServices;
  queueUrl: string;
  dlqUrl: string;
  tableName: string;
  dynamoEndpoint: string;
  sqsEndpoint: string;
  store: DynamoUsageStore;
  poller: SqsPoller;
  /** The ingest function's sampling, when configured. */
  sampling?: IngestSampling;
  /** The PostHog stand-in (local/posthog-standin.ts), when sampling runs without PostHog keys. */
  localPosthog?: PosthogStandin;
  /** Runs the roll-up job (roll-up of due windows, outbox delivery) now, after any run in progress. */
  rollup(): Promise<RollupReport>;
  /** Waits until the queue is empty and nothing is in flight. */
  settle(timeoutMs?: number): Promise<void>;
  /**
   * Waits until every counted call is rolled up into the counters and, if `delivered`, every PostHog
   * event has left the outbox: at most a window plus its grace after the last call.
   */
  rolledUp(timeoutMs?: number, o?: { delivered?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

const TABLE = 'tally';

export async function startLocalStack(options: Partial<LocalStackOptions> & Pick<LocalStackOptions, 'apiKey' | 'sink'>): Promise<LocalStack> {
  const o = { ...localStackDefaults, ...options };
  if (o.staleSeconds * 2 < o.graceSeconds) throw new Error(`staleSeconds (${o.staleSeconds}) must be at least half of graceSeconds (${o.graceSeconds}): a run may commit until then`);
  const dir = (name: string) => {
    if (!o.dataDir) return undefined;
    const d = join(o.dataDir, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const started: Array<{ stop(): Promise<void> }> = [];
  try {
    const dynamo: Emulator = await startDynamo({ port: 0, dataDir: dir('dynamodb') });
    started.push(dynamo);
    const sqs: Emulator = await startSqs({ port: 0, dataDir: dir('sqs'), region: o.region });
    started.push(sqs);
    const res = await ensureResources({
      dynamoEndpoint: dynamo.endpoint,
      sqsEndpoint: sqs.endpoint,
      region: o.region,
      tableName: TABLE,
      queueName: 'tally-events',
      dlqName: 'tally-events-dlq',
      maxReceiveCount: o.maxReceiveCount,
      visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
    });
    const aws = { AWS_REGION: o.region, TALLY_SQS_ENDPOINT: sqs.endpoint, TALLY_DYNAMODB_ENDPOINT: dynamo.endpoint };
    const dynamoApi = createDynamoApi(aws);
    started.push({ stop: async () => dynamoApi.destroy() });
    const store = new DynamoUsageStore(dynamoApi, { tableName: TABLE, concurrency: o.dynamoConcurrency });
    const recent = new RecentEvents();
    const counting = { window: aggregationWindow(o.windowSeconds, o.graceSeconds), shards: o.shards, dimensions: o.dimensions };

    let sampling: IngestSampling | undefined;
    let flags: Parameters<typeof createIngestHandler>[0]['flags'];
    let localPosthog: PosthogStandin | undefined;
    if (o.sampling) {
      const so = o.sampling;
      let posthog = so.posthog;
      if (!posthog) {
        if (!so.flagsFile) throw new Error('sampling without PostHog needs a flag definitions file (flagsFile)');
        localPosthog = await startPosthogStandin({ flagDefinitionsFile: so.flagsFile, capturedFile: so.capturedFile, maxKept: 10_000 });
        started.push(localPosthog);
        posthog = { host: localPosthog.url, projectKey: 'phc_local', personalKey: 'phx_local' };
      }
      const timeoutMs = so.timeoutMs ?? 1000;
      sampling = await createSampling(
        {
          POSTHOG_API_KEY: posthog.projectKey,
          POSTHOG_HOST: posthog.host,
          POSTHOG_PERSONAL_API_KEY: posthog.personalKey,
          TALLY_SAMPLING_FLAG_KEY: so.flagKey ?? 'usage-sampling',
          TALLY_SAMPLING_PERSON_PROPERTIES: so.personProperties ?? [],
          TALLY_SAMPLING_TIMEOUT_MS: timeoutMs,
          TALLY_SAMPLING_POLL_SECONDS: so.pollSeconds ?? 30,
          ...(so.posthogHttp ? { POSTHOG_HTTP: so.posthogHttp } : {}),
        },
        (level, message, extra) => o.log?.(`[sampling] ${level}: ${message}${extra ? ` ${JSON.stringify(extra)}` : ''}`),
      );
      const closing = sampling.sampler;
      started.push({ stop: () => closing.close() });
      flags = { host: posthog.host, projectKey: posthog.projectKey, timeoutMs: so.flagsProxyTimeoutMs ?? 5000 };
    }

    const queue = createEventQueue({ ...aws, TALLY_QUEUE_URL: res.queueUrl });
    started.push({ stop: async () => queue.destroy() });
    const limits = o.maxEventAgeDays !== undefined ? { maxEventAgeMs: o.maxEventAgeDays * 86_400_000 } : undefined;
    // Projects and keys, as ingest and query build them in Lambda (src/runtime/projects.ts); the local key
    // is imported as a configured key, as TALLY_API_KEYS is at a cold start.
    const cache = o.keyCacheTtlMs !== undefined ? { ttlMs: o.keyCacheTtlMs } : undefined;
    const keyStoreApi = o.keyStoreApi ? o.keyStoreApi(dynamoApi) : dynamoApi;
    const projects = createProjectServices({
      db: keyStoreApi,
      tableName: TABLE,
      usage: store,
      deploymentOrigins: o.corsOrigins ?? [],
      tokenSecret: o.tokenSecret ?? randomBytes(32).toString('hex'),
      cache,
      quotaMaxAgeMs: o.quotaMaxAgeMs,
      log: (level, message, extra) => o.log?.(`[projects] ${level}: ${message}${extra ? ` ${JSON.stringify(extra)}` : ''}`),
    });
    await projects.admin.importConfiguredKeys([o.apiKey]);
    const ingest = createIngestHandler({ queue, ...projects, sampling, flags, limits });
    const query = createQueryHandler({ store, auth: projects.auth, cors: projects.cors, dimensions: o.dimensions, shards: o.shards });
    const aggregator = createAggregatorHandler({
      store,
      ...counting,
      staleMs: o.staleSeconds * 1000,
      concurrency: o.dynamoConcurrency,
      onReport: o.onReport,
      log: (level, msg, extra) => o.log?.(`[aggregator] ${level}: ${msg} ${extra ? JSON.stringify(extra) : ''}`),
    });
    const defaultSink = recordingSink(o.sink, recent);
    const rollupJob = createRollupHandler({
      store,
      sink: defaultSink,
      sinks: projectSinks({
        defaultSink,
        project: (id) => projects.store.getProject(id),
        make: o.projectSink ?? ((d) => new PostHogNodeSink({ apiKey: d.key, host: d.host })),
        cache,
      }),
      ...counting,
      hourTtlDays: o.hourTtlDays,
      concurrency: o.dynamoConcurrency,
      onReport: o.onRollup,
      log: (level, msg, extra) => o.log?.(`[rollup] ${level}: ${msg} ${extra ? JSON.stringify(extra) : ''}`),
    });

    // A context per invocation, with the functions' timeouts: each invocation's deadline bounds its SQS,
    // DynamoDB and PostHog calls, as in Lambda.
    const ingestContext = () => createLambdaContext({ functionName: 'ingest', timeoutMs: INGEST.timeoutSeconds * 1000, region: o.region });
    const queryContext = () => createLambdaContext({ functionName: 'query', timeoutMs: QUERY.timeoutSeconds * 1000, region: o.region });
    // The usage page (local only: no such route in the CDK stack).
    const page = createUsagePage({
      auth: projects.auth,
      recent,
      sampled: localPosthog ? () => localPosthog!.events as unknown as Array<Record<string, unknown>> : undefined,
      sampledNote: !o.sampling ? 'sampling is off' : localPosthog ? '' : 'sampled events go to PostHog: see them there',
    });
    const isPage = (event: APIGatewayProxyEventV2) => event.requestContext.http.method === 'GET' && (event.rawPath === '/' || event.rawPath.startsWith('/local/'));
    let front: Front;
    if (o.frontDoor === 'function-url') {
      const all = allRoutes({ ingest, query: () => query });
      front = await startFront({ port: o.port, route: (event: APIGatewayProxyEventV2) => (isPage(event) ? page(event) : all(event, ingestContext())) });
    } else {
      // The routes of src/http/route-table.ts, as the CDK stack declares them on API Gateway: a request no
      // route matches gets API Gateway's 404 without reaching a function; preflights go to ingest
      // (`OPTIONS /{proxy+}`), whose CORS middleware answers them, as in the CDK stack.
      const routes = apiGatewayRoutes();
      front = await startFront({
        port: o.port,
        routes: [...routes.keys(), ...USAGE_PAGE_ROUTES],
        route: (event: APIGatewayProxyEventV2) => {
          const fn = routes.get(event.routeKey);
          return fn === 'ingest' ? ingest(event, ingestContext()) : fn ? query(event, queryContext()) : page(event);
        },
      });
    }
    started.push(front);

    const poller = new SqsPoller({
      queueUrl: res.queueUrl,
      queueArn: res.queueArn,
      endpoint: sqs.endpoint, // tally's JSON-protocol SQS client, as ingest's (local/poller.ts)
      region: o.region,
      handler: aggregator,
      batchSize: o.batchSize,
      maximumBatchingWindowMs: o.batchWindowMs,
      concurrency: o.concurrency,
      // The function timeout, as in Lambda: the aggregator bounds its DynamoDB calls by what is left of it.
      timeoutMs: AGGREGATOR.timeoutSeconds * 1000,
      onError: (err, kind) => o.log?.(`[poller] ${kind} error: ${String(err)}`),
    });
    await poller.start();
    started.push(poller);

    // The roll-up job, one run at a time, as the scheduled Lambda (each run gets a minute).
    let rolling: Promise<unknown> = Promise.resolve();
    const rollup = (): Promise<RollupReport> => {
      const p = rolling.then(() => rollupJob(undefined, createLambdaContext({ functionName: 'rollup', timeoutMs: ROLLUP.timeoutSeconds * 1000, region: o.region })));
      rolling = p.catch(() => undefined);
      return p;
    };
    const timer = setInterval(() => {
      rollup().catch((err: unknown) => o.log?.(`[rollup] ${String(err)}`));
    }, o.rollupIntervalMs);
    timer.unref();
    started.push({
      stop: async () => {
        clearInterval(timer);
        await rolling;
      },
    });
    const rolledUp = async (timeoutMs = 180_000, ro: { delivered?: boolean } = {}): Promise<void> => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        await rollup();
        const left: string[] = [];
        for (const shard of allShards(o.shards)) {
          for (const d of await store.allDeltas(shard)) left.push(`delta ${shard} ${d.sk}`);
          if (ro.delivered) for (const e of await store.listOutbox(shard, 5)) left.push(`outbox entry ${shard} ${e.sk}`);
        }
        if (left.length === 0) return;
        if (Date.now() > until) {
          const states = await Promise.all(allShards(o.shards).map((s) => store.getState(s)));
          throw new Error(`not rolled up after ${timeoutMs} ms: ${left.join(', ')}; shard states ${JSON.stringify(states.filter((x) => x.seq > 0 || x.owner))}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    };

    return {
      url: front.url,
      apiKey: o.apiKey,
      projects,
      queueUrl: res.queueUrl,
      dlqUrl: res.dlqUrl,
      tableName: TABLE,
      dynamoEndpoint: dynamo.endpoint,
      sqsEndpoint: sqs.endpoint,
      store,
      poller,
      sampling,
      localPosthog,
      rollup,
      rolledUp,
      settle: (timeoutMs = 60_000) => poller.drain(timeoutMs),
      stop: async () => {
        // Front first (no new work), then the roll-up timer, the poller's batch in flight, the emulators.
        await front.stop();
        for (const s of started.reverse()) if (s !== front) await s.stop();
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  }
}
