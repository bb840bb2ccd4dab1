/**
 * In-process stand-ins for DynamoDB (dynalite) and SQS (fauxqs), each in a worker thread, and the
 * idempotent creation of the table and queues tally needs. Used by `npm start` and by the integration
 * tests: no AWS, no Docker.
 *
 * fauxqs is published as an ES module only (its `exports` map has no `require` condition), so a
 * CommonJS caller — tsx in CJS mode, or Jest's module registry — cannot load it with `require`, and
 * Jest cannot `import()` it without `--experimental-vm-modules`. It therefore runs in a worker thread
 * of this process, which loads it with Node's own ESM loader. Side benefit: fauxqs gets its own event
 * loop, so a busy handler on the main thread does not stall queue traffic.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueNameExists,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

/** A running emulator. */
export interface Emulator {
  /** Base URL to give an AWS SDK client as `endpoint`, e.g. `http://127.0.0.1:8000`. */
  endpoint: string;
  /** The port it listens on (useful when started with port 0). */
  port: number;
  /** Stops listening and, with a data directory, flushes and closes the store. */
  stop(): Promise<void>;
}

/** Options of {@link startDynamo}. */
export interface DynamoOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Directory of the LevelDB store. Without it, data lives in memory and is lost on stop. */
  dataDir?: string;
}

/** Options of {@link startSqs}. */
export interface SqsOptions {
  /** TCP port; 0 picks a free one. fauxqs listens on all interfaces (0.0.0.0); the endpoint uses 127.0.0.1. */
  port?: number;
  /** Directory of fauxqs's SQLite store. Without it, queues and messages live in memory. */
  dataDir?: string;
  /** Region used for queue ARNs when a request's signature names none. */
  region?: string;
}

export const dynamoDefaults = { port: 0 } as const;
export const sqsDefaults = { port: 0, region: 'us-east-1' } as const;

/** Credentials the emulators accept (they check the signature's shape, never its secret). */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Client configuration for an AWS SDK v3 client talking to a local emulator. */
export function localAwsClientConfig(
  endpoint: string,
  region: string,
): { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } } {
  return { endpoint, region, credentials: { ...LOCAL_CREDENTIALS } };
}

/**
 * Starts dynalite in a worker thread of this process, listening on 127.0.0.1. Tables are ACTIVE at
 * once (create/update/delete delays are 0 ms). dynalite spends ~0.7 ms of CPU per UpdateItem: on its own
 * thread it no longer competes with the front, ingest and the aggregator on the main one.
 */
export async function startDynamo(opts: DynamoOptions = {}): Promise<Emulator> {
  const o = { ...dynamoDefaults, ...opts };
  if (o.dataDir) mkdirSync(o.dataDir, { recursive: true });
  return runServerWorker(DYNALITE_WORKER, { entry: require.resolve('dynalite'), port: o.port, path: o.dataDir }, 'dynalite');
}

/** Runs in the worker: starts dynalite (CommonJS), reports its port, closes it on request. */
const DYNALITE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dynalite = require(workerData.entry);
// dynalite 4 ends a Query's or Scan's stream by calling iterator.return(), which abstract-level's
// iterators do not have: the LevelDB iterator was never closed, and each Query leaked ~9 KB of native
// memory (RSS grew ~45 MB a minute under npm start's load). Closing it is what return() is for.
const abstractLevel = require(require.resolve('abstract-level', { paths: [require('node:path').dirname(workerData.entry)] }));
for (const C of [abstractLevel.AbstractIterator, abstractLevel.AbstractKeyIterator, abstractLevel.AbstractValueIterator]) {
  if (C && typeof C.prototype.return !== 'function') C.prototype.return = function () { return this.close(); };
}
const server = dynalite({ ...(workerData.path ? { path: workerData.path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.once('error', (err) => parentPort.postMessage({ error: String(err && err.stack || err), code: err && err.code }));
server.listen(workerData.port, '127.0.0.1', () => {
  parentPort.once('message', () => {
    // close() waits for pending LevelDB operations, then closes the store (its LOCK must be released
    // before the same directory can be opened again).
    server.close((err) => parentPort.postMessage({ stopped: true, ...(err ? { error: String(err) } : {}) }));
    server.closeIdleConnections();
  });
  parentPort.postMessage({ port: server.address().port });
});
`;

/** Finds fauxqs's ESM entry point without `require.resolve` (its exports map has no `require` condition). */
function fauxqsEntryUrl(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkgFile = path.join(dir, 'node_modules', 'fauxqs', 'package.json');
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
        exports?: { '.'?: { import?: string | { default?: string } } };
        main?: string;
      };
      const imp = pkg.exports?.['.']?.import;
      const entry = (typeof imp === 'string' ? imp : imp?.default) ?? pkg.main ?? 'index.js';
      return pathToFileURL(path.join(path.dirname(pkgFile), entry)).href;
    }
    if (path.dirname(dir) === dir) throw new Error('fauxqs is not installed (no node_modules/fauxqs above local/)');
  }
}

/** Runs in the worker: starts fauxqs, reports its port, stops it on request. Plain CommonJS. */
const FAUXQS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
// node:sqlite prints an ExperimentalWarning on every start; it says nothing useful here.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  if (String(warning && warning.message ? warning.message : warning).includes('SQLite')) return;
  return emitWarning.call(process, warning, ...rest);
};
// fauxqs keeps its data in SQLite in WAL mode with synchronous=FULL: an fsync on every insert, receive and
// delete of a message, a third of its worker's time under npm start's load. NORMAL, in WAL mode, keeps every
// committed write through a crash or kill -9 of this process (only an OS crash or power loss may undo the
// last ones), which is what a local stack needs.
const sqliteNormal = import(new URL('persistence.js', workerData.entry).href).then((p) => {
  const prepare = p.PersistenceManager && p.PersistenceManager.prototype.prepareStatements;
  if (typeof prepare !== 'function') throw new Error('fauxqs has no PersistenceManager.prototype.prepareStatements any more: update the SQLite setting in local/emulators.ts');
  p.PersistenceManager.prototype.prepareStatements = function () {
    this.db.exec('PRAGMA synchronous = NORMAL');
    return prepare.call(this);
  };
});
sqliteNormal
  .then(() => import(workerData.entry))
  .then((m) => m.startFauxqs(workerData.options))
  .then((server) => {
    parentPort.once('message', () => {
      server.stop().then(
        () => parentPort.postMessage({ stopped: true }),
        (err) => parentPort.postMessage({ stopped: true, error: String(err && err.stack || err) }),
      );
    });
    parentPort.postMessage({ port: server.port });
  })
  .catch((err) => parentPort.postMessage({ error: String(err && err.stack || err), code: err && err.code }));
`;

type WorkerReply = { port?: number; stopped?: boolean; error?: string; code?: string };

/**
 * Starts fauxqs (SQS) in a worker thread of this process.
 *
 * Queue URLs it hands out carry the host of the CreateQueue request (`http://127.0.0.1:<port>/000000000000/<name>`),
 * and a persisted queue keeps the URL of the port it was created on: always give SQS clients an explicit
 * `endpoint` (see {@link localAwsClientConfig}); fauxqs finds queues by the URL's last path segment.
 */
export async function startSqs(opts: SqsOptions = {}): Promise<Emulator> {
  const o = { ...sqsDefaults, ...opts };
  if (o.dataDir) mkdirSync(o.dataDir, { recursive: true });
  return runServerWorker(
    FAUXQS_WORKER,
    { entry: fauxqsEntryUrl(), options: { port: o.port, logger: false, defaultRegion: o.region, ...(o.dataDir ? { dataDir: o.dataDir } : {}) } },
    'fauxqs',
  );
}

/**
 * Starts a server in a worker thread running `source` (CommonJS), which answers `{port}` once listening
 * (or `{error}`), and `{stopped}` after any message asking it to stop.
 */
async function runServerWorker(source: string, workerData: unknown, name: string): Promise<Emulator> {
  const worker = new Worker(source, { eval: true, workerData });
  const next = () =>
    new Promise<WorkerReply>((resolve, reject) => {
      const onMessage = (m: WorkerReply) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(m);
      };
      const onError = (err: Error) => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        reject(err);
      };
      const onExit = (code: number) => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        reject(new Error(`${name} worker exited with code ${code}`));
      };
      worker.once('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  const started = await next().catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  if (started.port === undefined) {
    await worker.terminate();
    const err = new Error(`${name} did not start: ${started.error}`);
    if (started.code) Object.assign(err, { code: started.code });
    throw err;
  }
  const port = started.port;
  // A forgotten stop() must not keep the process (or a Jest worker) alive; stop() re-refs it so that
  // the server's store is closed before the process may exit.
  worker.unref();
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop() {
      stopped ??= (async () => {
        worker.ref();
        const reply = next();
        worker.postMessage('stop');
        const r = await reply.finally(() => worker.terminate());
        if (r.error) throw new Error(`${name} did not stop cleanly: ${r.error}`);
      })();
      return stopped;
    },
  };
}

/** Options of {@link ensureResources}. */
export interface ResourceOptions {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  region: string;
  tableName: string;
  queueName: string;
  dlqName: string;
  /** Receives before SQS moves a message to the dead-letter queue. */
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
}

/** What {@link ensureResources} created or found. */
export interface Resources {
  /** Main queue URL, on the given `sqsEndpoint`. */
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

/** Dead letters are kept as long as SQS allows (14 days), like the deployed DLQ. */
const DLQ_RETENTION_SECONDS = '1209600';

/**
 * Creates, if missing, the DynamoDB table (on-demand; `pk` S hash key, `sk` S range key) and the main
 * queue with its dead-letter queue. Safe to call on every start: existing resources are kept, and
 * changed queue settings (visibility timeout, redrive policy) are applied to the existing queue.
 */
export async function ensureResources(opts: ResourceOptions): Promise<Resources> {
  const dynamo = new DynamoDBClient(localAwsClientConfig(opts.dynamoEndpoint, opts.region));
  const sqs = new SQSClient(localAwsClientConfig(opts.sqsEndpoint, opts.region));
  try {
    const [, queues] = await Promise.all([ensureTable(dynamo, opts.tableName), ensureQueues(sqs, opts)]);
    return queues;
  } finally {
    dynamo.destroy();
    sqs.destroy();
  }
}

/** Creates the table if missing (on-demand; `pk` S hash key, `sk` S range key) and waits until ACTIVE. */
export async function ensureTable(dynamo: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  // dynalite with createTableMs 0 is ACTIVE at once; a real DynamoDB Local may take a moment.
  for (let i = 0; ; i++) {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (i >= 100) throw new Error(`table ${tableName} is ${Table?.TableStatus}, not ACTIVE`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ensureQueues(sqs: SQSClient, opts: ResourceOptions): Promise<Resources> {
  const dlq = await ensureQueue(sqs, opts.sqsEndpoint, opts.dlqName, { MessageRetentionPeriod: DLQ_RETENTION_SECONDS });
  const main = await ensureQueue(sqs, opts.sqsEndpoint, opts.queueName, {
    VisibilityTimeout: String(opts.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: opts.maxReceiveCount }),
  });
  return { queueUrl: main.url, queueArn: main.arn, dlqUrl: dlq.url, dlqArn: dlq.arn };
}

async function ensureQueue(
  sqs: SQSClient,
  endpoint: string,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  let url: string;
  try {
    url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
  } catch (err) {
    // The queue exists with other settings (a changed config, or a persisted queue): update it.
    if (!isQueueNameExists(err)) throw err;
    url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return { url: onEndpoint(url, endpoint), arn: Attributes!.QueueArn! };
}

/**
 * SQS's JSON protocol is "query compatible": the SDK names the error after the legacy code
 * (`AWS.SimpleQueueService.QueueNameExists`), so `instanceof QueueNameExists` is false for it.
 */
function isQueueNameExists(err: unknown): boolean {
  if (err instanceof QueueNameExists) return true;
  const e = err as { name?: unknown; __type?: unknown } | null;
  return (
    typeof e?.name === 'string' && /(^|\.)QueueNameExists$|QueueAlreadyExists$/.test(e.name)
  ) || (typeof e?.__type === 'string' && e.__type.endsWith('#QueueNameExists'));
}

/** The same queue URL on the emulator's current address (a persisted queue remembers the port it was created on). */
function onEndpoint(queueUrl: string, endpoint: string): string {
  return new URL(new URL(queueUrl).pathname, endpoint).href;
}
