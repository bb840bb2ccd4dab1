import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTEXT_KEYS, DeployConfigError, envVarFor, readConfig, SAMPLING_CONTEXT_KEYS } from '../../lib/config';
import { REPO_ROOT } from './support';

const fromContext = (ctx: Record<string, unknown>) => (key: string) => ctx[key];

describe('readConfig', () => {
  it('has sensible defaults with no context and no environment', () => {
    expect(readConfig(fromContext({}), {})).toEqual({
      stage: 'dev',
      awsClient: 'json',
      frontDoor: 'http-api',
      lambdaConcurrencyQuota: 10,
      accessLogs: 'off',
      posthogHost: 'https://us.i.posthog.com',
      posthogSecretName: 'tally/dev/posthog-api-key',
      throttleRate: 5000,
      throttleBurst: 2500,
      batchSize: 10_000,
      batchWindowSeconds: 5,
      maxConcurrency: 50,
      windowSeconds: 60,
      graceSeconds: 60,
      shards: 8,
      removalPolicy: 'retain',
      logRetentionDays: 30,
      logLevel: 'INFO',
      minuteTtlDays: 14,
      queueAgeAlarmSeconds: 600,
      ingestP99AlarmMs: 1000,
      api5xxAlarmPercent: 1,
      outboxAgeAlarmSeconds: 900,
      samplingFlagKey: 'usage-sampling',
      samplingTimeoutMs: 1000,
    });
  });

  it('reads context (strings from -c, numbers from cdk.json)', () => {
    const c = readConfig(fromContext({ stage: 'prod', throttleRate: '800', maxConcurrency: 20, alarmEmail: 'ops@example.com' }), {});
    expect(c).toMatchObject({ stage: 'prod', throttleRate: 800, maxConcurrency: 20, alarmEmail: 'ops@example.com', posthogSecretName: 'tally/prod/posthog-api-key' });
  });

  it('falls back to TALLY_* environment variables; context wins over the environment', () => {
    const env = { TALLY_STAGE: 'staging', TALLY_BATCH_WINDOW_SECONDS: '30', TALLY_POSTHOG_SECRET_NAME: 'x/y' };
    expect(readConfig(fromContext({}), env)).toMatchObject({ stage: 'staging', batchWindowSeconds: 30, posthogSecretName: 'x/y' });
    expect(readConfig(fromContext({ stage: 'prod' }), env).stage).toBe('prod');
  });

  it('an empty context value unsets a value from the environment', () => {
    expect(readConfig(fromContext({ alarmEmail: '' }), { TALLY_ALARM_EMAIL: 'ops@example.com' }).alarmEmail).toBeUndefined();
  });

  it('names every bad key and where it came from', () => {
    let err: unknown;
    try {
      readConfig(fromContext({ stage: 'Prod!', batchSize: '20000', removalPolicy: 'snapshot' }), { TALLY_ALARM_EMAIL: 'not-an-email' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeployConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/stage \(context "stage"\)/);
    expect(msg).toMatch(/batchSize \(context "batchSize"\)/);
    expect(msg).toMatch(/removalPolicy/);
    expect(msg).toMatch(/alarmEmail \(environment TALLY_ALARM_EMAIL\)/);
  });

  it('rejects a batch size above 10 without a batching window, and invalid log retention', () => {
    expect(() => readConfig(fromContext({ batchWindowSeconds: 0 }), {})).toThrow(/batchWindowSeconds.*at least 1 when batchSize is above 10/);
    expect(readConfig(fromContext({ batchWindowSeconds: 0, batchSize: 10 }), {}).batchWindowSeconds).toBe(0);
    expect(() => readConfig(fromContext({ logRetentionDays: 10 }), {})).toThrow(/logRetentionDays/);
    expect(() => readConfig(fromContext({ maxConcurrency: 1 }), {})).toThrow(/maxConcurrency/);
    expect(() => readConfig(fromContext({ throttleRate: 'fast' }), {})).toThrow(/throttleRate/);
  });
});

describe('envVarFor', () => {
  it('maps context keys to TALLY_ variables', () => {
    expect(envVarFor('stage')).toBe('TALLY_STAGE');
    expect(envVarFor('batchWindowSeconds')).toBe('TALLY_BATCH_WINDOW_SECONDS');
    expect(envVarFor('api5xxAlarmPercent')).toBe('TALLY_API5XX_ALARM_PERCENT');
    expect(envVarFor('ingestP99AlarmMs')).toBe('TALLY_INGEST_P99_ALARM_MS');
  });
});

describe('docs/DEPLOY.md', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'DEPLOY.md'), 'utf8');
  // The sampling keys are documented with sampling, in docs/SAMPLING.md (below).
  it.each(CONTEXT_KEYS.filter((k) => !SAMPLING_CONTEXT_KEYS.includes(k)))('documents context key %s with its environment variable', (key) => {
    expect(doc).toContain(`\`${key}\``);
    expect(doc).toContain(`\`${envVarFor(key)}\``);
  });
});

describe('docs/SAMPLING.md', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'SAMPLING.md'), 'utf8');
  it.each([...SAMPLING_CONTEXT_KEYS])('documents context key %s with its environment variable', (key) => {
    expect(CONTEXT_KEYS).toContain(key);
    expect(doc).toContain(`\`${key}\``);
    expect(doc).toContain(`\`${envVarFor(key)}\``);
  });
});

describe('sampling settings', () => {
  it('are read from context and the environment, and validated', () => {
    const c = readConfig(fromContext({ samplingSecretName: 'tally/dev/posthog-personal-key', samplingPersonProperties: 'firstRouteCalled=route,plan' }), { TALLY_SAMPLING_TIMEOUT_MS: '500' });
    expect(c).toMatchObject({ samplingSecretName: 'tally/dev/posthog-personal-key', samplingPersonProperties: 'firstRouteCalled=route,plan', samplingTimeoutMs: 500, samplingFlagKey: 'usage-sampling' });
    expect(() => readConfig(fromContext({ samplingPersonProperties: 'a==b' }), {})).toThrow(/samplingPersonProperties/);
    expect(() => readConfig(fromContext({ samplingTimeoutMs: 60_000 }), {})).toThrow(/samplingTimeoutMs/);
  });
});

describe('cdk.json', () => {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8'));
  it('runs bin/tally.ts with tsx and carries no tally settings (they would shadow TALLY_* variables)', () => {
    expect(cdkJson.app).toBe('npx tsx bin/tally.ts');
    for (const key of CONTEXT_KEYS) expect(cdkJson.context).not.toHaveProperty(key);
  });
});

describe('bin/tally.ts', () => {
  it('stops with the list of bad keys, before synthesizing anything', () => {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(REPO_ROOT, 'bin', 'tally.ts')], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', CDK_CONTEXT_JSON: JSON.stringify({ stage: 'Bad Stage', throttleRate: 'fast' }), CDK_OUTDIR: os.tmpdir() },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('invalid tally deploy configuration');
    expect(r.stderr).toMatch(/stage \(context "stage"\)/);
    expect(r.stderr).toMatch(/throttleRate/);
  });
});
