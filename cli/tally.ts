/**
 * `npm run tally -- <command>`: manage projects and keys, the same against `npm start` and a deployed
 * stack.
 *
 *   projects create <name> [--posthog-key phc_… --posthog-host URL] [--ip keep|anonymise|drop]
 *                          [--rate N --burst N] [--quota N] [--origins URL,…] [--json]
 *   projects list | show <name> | update <name> [same flags] [--revoke-tokens] [--json]
 *   keys create --project <name> [--name X] [--scopes ingest,query,admin] [--json]
 *   keys list --project <name> [--json]
 *   keys rotate <key-id> [--grace 24h] [--json]
 *   keys revoke <key-id> [--json]
 *
 * Target: without `--stack`, the `npm start` instance of this checkout (its DynamoDB, from
 * `$TALLY_DATA_DIR/stack.json`; when it is not running, the data directory is opened directly). With
 * `--stack <name>` (or `TALLY_STACK`), the deployed stack's table, found through CloudFormation with the
 * AWS SDK's credential chain (environment, profiles, SSO; `--region` or `AWS_REGION`).
 *
 * Bad input prints what is wrong and exits 2, having changed nothing; `--json` prints one JSON object.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AdminInputError, parseScopes, ProjectAdmin, type ProjectSettings } from '../src/projects/admin';
import { ProjectStore } from '../src/projects/store';
import type { KeyRecord, Project } from '../src/projects/types';
import { DynamoJsonApi } from '../src/store/dynamo-json';
import type { DynamoApi } from '../src/store/dynamo-api';

const USAGE = `usage: npm run tally -- <command> [options]
  projects create <name> [--posthog-key phc_… --posthog-host URL] [--ip keep|anonymise|drop]
                         [--rate N --burst N] [--quota N] [--origins URL,…] [--json]
  projects list | show <name> | update <name> [same flags] [--revoke-tokens] [--json]
  keys create --project <name> [--name X] [--scopes ingest,query,admin] [--json]
  keys list --project <name> [--json]
  keys rotate <key-id> [--grace 24h] [--json]
  keys revoke <key-id> [--json]
target: npm start of this checkout ($TALLY_DATA_DIR, default .tally), or --stack <name> [--region R]`;

const OPTIONS = {
  json: { type: 'boolean' },
  project: { type: 'string' },
  name: { type: 'string' },
  scopes: { type: 'string' },
  grace: { type: 'string' },
  'posthog-key': { type: 'string' },
  'posthog-host': { type: 'string' },
  ip: { type: 'string' },
  rate: { type: 'string' },
  burst: { type: 'string' },
  quota: { type: 'string' },
  origins: { type: 'string' },
  'revoke-tokens': { type: 'boolean' },
  stack: { type: 'string' },
  region: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

/** `24h`, `90m`, `7d`, `30s` or milliseconds → ms. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new AdminInputError([`grace: ${s} is not a duration (e.g. 24h, 90m, 7d)`]);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * mult);
}

const int = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new AdminInputError([`${name}: ${v} is not a whole number`]);
  return Number(v);
};

/** The settings the flags give (only those given). */
export function settingsFrom(v: Values): ProjectSettings {
  const s: ProjectSettings = {};
  if (v['posthog-key'] !== undefined || v['posthog-host'] !== undefined) {
    if (!v['posthog-key']) throw new AdminInputError(['posthog-key: needed with --posthog-host']);
    s.posthog = { key: v['posthog-key'], host: v['posthog-host'] ?? 'https://us.i.posthog.com' };
  }
  if (v.ip !== undefined) s.ip = v.ip as ProjectSettings['ip'];
  const rate = int('rate', v.rate);
  const burst = int('burst', v.burst);
  if (rate !== undefined || burst !== undefined) {
    if (rate === undefined) throw new AdminInputError(['rate: needed with --burst']);
    s.rate = { perSecond: rate, burst: burst ?? rate };
  }
  const quota = int('quota', v.quota);
  if (quota !== undefined) s.monthlyQuota = quota;
  if (v.origins !== undefined) s.origins = v.origins.split(',').map((o) => o.trim()).filter(Boolean);
  return s;
}

interface Target {
  db: DynamoApi;
  tableName: string;
  where: string;
  close(): Promise<void>;
}

async function localTarget(dataDir: string): Promise<Target> {
  const file = join(dataDir, 'stack.json');
  if (existsSync(file)) {
    const s = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; dynamoEndpoint: string; tableName: string };
    let alive = false;
    try {
      process.kill(s.pid, 0);
      alive = true;
    } catch {
      /* not running */
    }
    if (alive) {
      const db = new DynamoJsonApi({ region: 'us-east-1', endpoint: s.dynamoEndpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
      return { db, tableName: s.tableName, where: `npm start (${dataDir})`, close: async () => db.destroy() };
    }
  }
  // npm start is not running: open its data directory ourselves (the same table, created if new).
  const { startDynamo, ensureTable, localAwsClientConfig } = await import('../local/emulators');
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const emulator = await startDynamo({ port: 0, dataDir: join(dataDir, 'dynamodb') });
  const client = new DynamoDBClient(localAwsClientConfig(emulator.endpoint, 'us-east-1'));
  await ensureTable(client, 'tally');
  client.destroy();
  const db = new DynamoJsonApi({ region: 'us-east-1', endpoint: emulator.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  return {
    db,
    tableName: 'tally',
    where: `${dataDir} (npm start is not running)`,
    close: async () => {
      db.destroy();
      await emulator.stop();
    },
  };
}

async function stackTarget(stack: string, region: string | undefined): Promise<Target> {
  // The design card's SDK earns its place here: the credential chain (profiles, SSO) of an operator.
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { SdkDynamoApi } = await import('../src/store/dynamo-sdk');
  const cfn = new CloudFormationClient(region ? { region } : {});
  const r = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
  cfn.destroy();
  const tableName = r.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'TableName')?.OutputValue;
  if (!tableName) throw new UsageError(`stack ${stack} has no TableName output (is it a tally stack?)`);
  const client = new DynamoDBClient(region ? { region } : {});
  return { db: new SdkDynamoApi(client), tableName, where: `stack ${stack} (table ${tableName})`, close: async () => client.destroy() };
}

const projectView = (p: Project) => ({
  name: p.id,
  posthog: p.posthog ? { key: p.posthog.key, host: p.posthog.host } : null,
  ip: p.ip,
  rate: p.rate ?? null,
  quota: p.monthlyQuota ?? null,
  origins: p.origins,
  tokenVersion: p.tokenVersion,
  createdAt: new Date(p.createdAt).toISOString(),
  updatedAt: new Date(p.updatedAt).toISOString(),
});
const keyView = (k: KeyRecord) => ({
  id: k.id,
  project: k.project,
  name: k.name,
  scopes: k.scopes,
  prefix: `${k.prefix}…`,
  createdAt: new Date(k.createdAt).toISOString(),
  expiresAt: k.expiresAt !== undefined ? new Date(k.expiresAt).toISOString() : null,
  revoked: Boolean(k.revoked),
  lastUsedAt: k.lastUsedAt !== undefined ? new Date(k.lastUsedAt).toISOString() : null,
});

/** Runs one command; returns what to print. Exported for the tests. */
export async function run(argv: string[], env: Record<string, string | undefined> = process.env): Promise<{ out: string; code: number }> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return { out: `${(err as Error).message}\n${USAGE}`, code: 2 };
  }
  const { values: v, positionals: [noun, verb, arg] } = parsed;
  if (v.help || !noun) return { out: USAGE, code: noun ? 0 : 2 };
  const json = Boolean(v.json);
  const print = (o: unknown, text: string): string => (json ? JSON.stringify(o) : text);
  const stack = v.stack ?? env.TALLY_STACK;
  let target: Target | undefined;
  try {
    target = stack ? await stackTarget(stack, v.region ?? env.AWS_REGION) : await localTarget(resolve(v['data-dir'] ?? env.TALLY_DATA_DIR ?? '.tally'));
    const admin = new ProjectAdmin(new ProjectStore(target.db, target.tableName));
    const need = (x: string | undefined, what: string): string => {
      if (!x) throw new UsageError(`${noun} ${verb}: ${what} is required\n${USAGE}`);
      return x;
    };
    const out = await (async (): Promise<string> => {
      if (noun === 'projects') {
        switch (verb) {
          case 'create': {
            const p = await admin.createProject(need(arg, '<name>'), settingsFrom(v));
            return print(projectView(p), `created project ${p.id} in ${target!.where}`);
          }
          case 'list': {
            const ps = await admin.listProjects();
            return print({ projects: ps.map(projectView) }, ps.map((p) => `${p.id}\tip ${p.ip}${p.rate ? `\trate ${p.rate.perSecond}/s burst ${p.rate.burst}` : ''}${p.monthlyQuota ? `\tquota ${p.monthlyQuota}/month` : ''}${p.origins.length ? `\torigins ${p.origins.join(',')}` : ''}${p.posthog ? `\tposthog ${p.posthog.host}` : ''}`).join('\n') || '(no projects)');
          }
          case 'show': {
            const p = await admin.getProject(need(arg, '<name>'));
            return print(projectView(p), JSON.stringify(projectView(p), null, 2));
          }
          case 'update': {
            const p = await admin.updateProject(need(arg, '<name>'), { ...settingsFrom(v), revokeTokens: Boolean(v['revoke-tokens']) });
            return print(projectView(p), `updated project ${p.id}${v['revoke-tokens'] ? ' (its client tokens are revoked)' : ''}`);
          }
        }
      }
      if (noun === 'keys') {
        switch (verb) {
          case 'create': {
            const { key, record } = await admin.createKey(need(v.project, '--project'), { name: v.name, scopes: parseScopes(v.scopes) });
            return print({ id: record.id, key, project: record.project, scopes: record.scopes }, `created key ${record.id} (${record.scopes.join(', ')}) for ${record.project}:\n\n  ${key}\n\nShown once: only its hash is stored.`);
          }
          case 'list': {
            const ks = await admin.listKeys(need(v.project, '--project'));
            return print({ keys: ks.map(keyView) }, ks.map((k) => `${k.id}\t${k.prefix}…\t${k.scopes.join(',')}\t${k.name}${k.revoked ? '\trevoked' : k.expiresAt ? `\texpires ${new Date(k.expiresAt).toISOString()}` : ''}`).join('\n') || '(no keys)');
          }
          case 'rotate': {
            const r = await admin.rotateKey(need(arg, '<key-id>'), parseDuration(v.grace ?? '24h'));
            return print({ id: r.record.id, key: r.key, project: r.record.project, scopes: r.record.scopes, oldKeyExpiresAt: new Date(r.oldExpiresAt).toISOString() }, `new key ${r.record.id} for ${r.record.project}:\n\n  ${r.key}\n\nThe old key works until ${new Date(r.oldExpiresAt).toISOString()}.`);
          }
          case 'revoke': {
            const k = await admin.revokeKey(need(arg, '<key-id>'));
            return print({ id: k.id, project: k.project, revoked: true }, `revoked ${k.id}: refused by every running ingest and query within 30 s (their key cache)`);
          }
        }
      }
      throw new UsageError(`unknown command: ${[noun, verb].filter(Boolean).join(' ')}\n${USAGE}`);
    })();
    return { out, code: 0 };
  } catch (err) {
    if (err instanceof AdminInputError) return { out: json ? JSON.stringify({ error: 'invalid_input', problems: err.problems }) : `error: ${err.problems.join('\n       ')}`, code: 2 };
    if (err instanceof UsageError) return { out: err.message, code: 2 };
    return { out: `error: ${(err as Error).message}`, code: 1 };
  } finally {
    await target?.close();
  }
}

if (require.main === module || process.argv[1]?.endsWith('tally.cjs')) {
  void run(process.argv.slice(2)).then(({ out, code }) => {
    (code === 0 ? process.stdout : process.stderr).write(`${out}\n`);
    process.exit(code);
  });
}
