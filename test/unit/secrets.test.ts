import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { extractSecretValue, pendingSecrets, resolveSecretEnv, SecretResolutionError } from '../../src/secrets';

const sm = mockClient(SecretsManagerClient);
const API_KEYS_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:tally/dev/api-keys-AbCdEf';
const POSTHOG_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:tally/dev/posthog-api-key';
const SECRET = 'phc_super_secret_value_123';

let logSpies: jest.SpyInstance[] = [];

beforeEach(() => {
  sm.reset();
  logSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => jest.spyOn(console, m).mockImplementation(() => {}));
});

afterEach(() => {
  // Whatever happened, no secret value reached the console.
  for (const spy of logSpies) {
    for (const call of spy.mock.calls) expect(JSON.stringify(call)).not.toContain(SECRET);
    spy.mockRestore();
  }
});

describe('resolveSecretEnv', () => {
  it('sets <NAME> from a plain string secret', async () => {
    sm.on(GetSecretValueCommand, { SecretId: POSTHOG_ARN }).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('resolves several secrets, each from its own ARN', async () => {
    sm.on(GetSecretValueCommand, { SecretId: API_KEYS_ARN }).resolves({ SecretString: 'key-one-123,key-two-456' });
    sm.on(GetSecretValueCommand, { SecretId: POSTHOG_ARN }).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = {
      TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN,
      POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN,
      UNRELATED: 'x',
    };
    await resolveSecretEnv(env);
    expect(env.TALLY_API_KEYS).toBe('key-one-123,key-two-456');
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('reads the <NAME> field of a JSON secret, before a "value" field', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ value: 'other', POSTHOG_API_KEY: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('reads the "value" field of a JSON secret', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ value: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('trims whitespace (a secret written from a file often ends with a newline)', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: `  ${SECRET}\n` });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('leaves a variable that is already set alone and does not call Secrets Manager', async () => {
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN, POSTHOG_API_KEY: 'phc_local' };
    await resolveSecretEnv(env);
    expect(env.POSTHOG_API_KEY).toBe('phc_local');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('does nothing when there is no *_SECRET_ARN variable', async () => {
    const env: Record<string, string | undefined> = { TALLY_API_KEYS: 'abcdefgh' };
    await resolveSecretEnv(env);
    expect(env).toEqual({ TALLY_API_KEYS: 'abcdefgh' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('is idempotent: a second call fetches nothing', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env);
    await resolveSecretEnv(env);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('fails with an error naming the variable and the secret when the secret is missing', async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} }),
    );
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    const err = await resolveSecretEnv(env).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretResolutionError);
    const e = err as SecretResolutionError;
    expect(e.variable).toBe('POSTHOG_API_KEY');
    expect(e.message).toContain('POSTHOG_API_KEY');
    expect(e.message).toContain(POSTHOG_ARN);
    expect(e.message).toContain('ResourceNotFoundException');
    expect(env.POSTHOG_API_KEY).toBeUndefined();
  });

  it('sets nothing when one of several secrets fails', async () => {
    sm.on(GetSecretValueCommand, { SecretId: API_KEYS_ARN }).resolves({ SecretString: 'key-one-123' });
    sm.on(GetSecretValueCommand, { SecretId: POSTHOG_ARN }).rejects(new Error('AccessDeniedException'));
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN, POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await expect(resolveSecretEnv(env)).rejects.toThrow(/POSTHOG_API_KEY/);
    expect(env.TALLY_API_KEYS).toBeUndefined();
    expect(env.POSTHOG_API_KEY).toBeUndefined();
  });

  it('rejects a binary secret with a clear message', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN };
    await expect(resolveSecretEnv(env)).rejects.toThrow(/TALLY_API_KEYS.*binary secrets are not supported/);
  });

  it('never puts the value in an error message', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ other: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    const err = (await resolveSecretEnv(env).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('POSTHOG_API_KEY');
    expect(err.message).toMatch(/without a "POSTHOG_API_KEY" or "value" field/);
    expect(err.message).not.toContain(SECRET);
    expect(err.stack ?? '').not.toContain(SECRET);
  });
});

describe('pendingSecrets', () => {
  it('finds <NAME>_SECRET_ARN variables whose <NAME> is unset or empty', () => {
    expect(
      pendingSecrets({
        A_SECRET_ARN: 'arn:a',
        A: '',
        B_SECRET_ARN: 'arn:b',
        B: 'set',
        C_SECRET_ARN: '',
        _SECRET_ARN: 'arn:nameless',
        POSTHOG_PERSONAL_API_KEY_SECRET_ARN: ' arn:p ',
      }),
    ).toEqual([
      { name: 'A', secretId: 'arn:a' },
      { name: 'POSTHOG_PERSONAL_API_KEY', secretId: 'arn:p' },
    ]);
  });
});

describe('extractSecretValue', () => {
  it('treats a string that only looks like JSON as plain text', () => {
    expect(extractSecretValue('X', 'id', '{not json')).toBe('{not json');
  });
  it('rejects an empty secret and an empty or non-string JSON field', () => {
    expect(() => extractSecretValue('X', 'id', '  ')).toThrow(/X.*empty/);
    expect(() => extractSecretValue('X', 'id', '{"X": ""}')).toThrow(/field "X"/);
    expect(() => extractSecretValue('X', 'id', '{"value": 42}')).toThrow(/field "value"/);
  });
});
