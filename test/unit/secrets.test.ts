import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lazy } from '../../functions/lazy';
import { awsSecretFetcher, extractSecretValue, pendingSecrets, resolveSecretEnv, SecretEnv, SecretResolutionError } from '../../src/secrets';

/** Scripted answers of GetSecretValue per secret id (or for any id), and the ids asked for. */
type Answer = { SecretString?: string; SecretBinary?: Uint8Array } | Error;
const sm = {
  rules: [] as Array<{ id?: string; answer: Answer }>,
  calls: [] as string[],
  reset() {
    this.rules = [];
    this.calls = [];
  },
  on(id?: string) {
    return { resolves: (a: Answer) => this.rules.push({ id, answer: a }), rejects: (e: Error) => this.rules.push({ id, answer: e }) };
  },
  fetch: async (id: string): Promise<{ SecretString?: string }> => {
    sm.calls.push(id);
    const rule = sm.rules.find((r) => r.id === id) ?? sm.rules.find((r) => r.id === undefined);
    if (!rule) throw new Error('no scripted answer');
    if (rule.answer instanceof Error) throw rule.answer;
    return rule.answer as { SecretString?: string };
  },
};
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
    sm.on(POSTHOG_ARN).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
    expect(sm.calls).toHaveLength(1);
  });

  it('resolves several secrets, each from its own ARN', async () => {
    sm.on(API_KEYS_ARN).resolves({ SecretString: 'key-one-123,key-two-456' });
    sm.on(POSTHOG_ARN).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = {
      TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN,
      POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN,
      UNRELATED: 'x',
    };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.TALLY_API_KEYS).toBe('key-one-123,key-two-456');
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
    expect(sm.calls).toHaveLength(2);
  });

  it('reads the <NAME> field of a JSON secret, before a "value" field', async () => {
    sm.on().resolves({ SecretString: JSON.stringify({ value: 'other', POSTHOG_API_KEY: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('reads the "value" field of a JSON secret', async () => {
    sm.on().resolves({ SecretString: JSON.stringify({ value: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('trims whitespace (a secret written from a file often ends with a newline)', async () => {
    sm.on().resolves({ SecretString: `  ${SECRET}\n` });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
  });

  it('leaves a variable that is already set alone and does not call Secrets Manager', async () => {
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN, POSTHOG_API_KEY: 'phc_local' };
    await resolveSecretEnv(env, sm.fetch);
    expect(env.POSTHOG_API_KEY).toBe('phc_local');
    expect(sm.calls).toHaveLength(0);
  });

  it('does nothing when there is no *_SECRET_ARN variable', async () => {
    const env: Record<string, string | undefined> = { TALLY_API_KEYS: 'abcdefgh' };
    await resolveSecretEnv(env, sm.fetch);
    expect(env).toEqual({ TALLY_API_KEYS: 'abcdefgh' });
    expect(sm.calls).toHaveLength(0);
  });

  it('is idempotent: a second call fetches nothing', async () => {
    sm.on().resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await resolveSecretEnv(env, sm.fetch);
    await resolveSecretEnv(env, sm.fetch);
    expect(sm.calls).toHaveLength(1);
  });

  it('fails with an error naming the variable and the secret when the secret is missing', async () => {
    sm.on().rejects(
      Object.assign(new Error("Secrets Manager can't find the specified secret."), { name: 'ResourceNotFoundException' }),
    );
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    const err = await resolveSecretEnv(env, sm.fetch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretResolutionError);
    const e = err as SecretResolutionError;
    expect(e.variable).toBe('POSTHOG_API_KEY');
    expect(e.message).toContain('POSTHOG_API_KEY');
    expect(e.message).toContain(POSTHOG_ARN);
    expect(e.message).toContain('ResourceNotFoundException');
    expect(env.POSTHOG_API_KEY).toBeUndefined();
  });

  it('sets nothing when one of several secrets fails', async () => {
    sm.on(API_KEYS_ARN).resolves({ SecretString: 'key-one-123' });
    sm.on(POSTHOG_ARN).rejects(new Error('AccessDeniedException'));
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN, POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    await expect(resolveSecretEnv(env, sm.fetch)).rejects.toThrow(/POSTHOG_API_KEY/);
    expect(env.TALLY_API_KEYS).toBeUndefined();
    expect(env.POSTHOG_API_KEY).toBeUndefined();
  });

  it('rejects a binary secret with a clear message', async () => {
    sm.on().resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN };
    await expect(resolveSecretEnv(env, sm.fetch)).rejects.toThrow(/TALLY_API_KEYS.*binary secrets are not supported/);
  });

  it('never puts the value in an error message', async () => {
    sm.on().resolves({ SecretString: JSON.stringify({ other: SECRET }) });
    const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    const err = (await resolveSecretEnv(env, sm.fetch).catch((e: unknown) => e)) as Error;
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

describe('awsSecretFetcher (GetSecretValue over HTTP, SigV4, no SDK)', () => {
  const requests: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  let status = 200;
  let answer: unknown = { ARN: POSTHOG_ARN, Name: 'tally/dev/posthog-api-key', SecretString: SECRET };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body });
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(answer));
    });
  });
  let endpoint = '';
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token' };

  it('asks for the secret id with the JSON target, signed for secretsmanager in the region', async () => {
    const get = awsSecretFetcher({ region: 'eu-west-1', endpoint, credentials: creds });
    expect(await get(POSTHOG_ARN)).toEqual({ SecretString: SECRET });
    const r = requests.at(-1)!;
    expect(JSON.parse(r.body)).toEqual({ SecretId: POSTHOG_ARN });
    expect(r.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(r.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(r.headers['x-amz-security-token']).toBe('session-token');
    expect(r.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/secretsmanager\/aws4_request, SignedHeaders=[a-z;-]+, Signature=[0-9a-f]{64}$/);
  });

  it("turns an AWS error answer into an error named after AWS's type, which resolveSecretEnv reports", async () => {
    status = 400;
    answer = { __type: 'com.amazonaws.secretsmanager#ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." };
    try {
      const env: Record<string, string | undefined> = { POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
      const err = (await resolveSecretEnv(env, awsSecretFetcher({ endpoint, credentials: creds })).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(SecretResolutionError);
      expect(err.message).toContain('ResourceNotFoundException');
      expect(err.message).toContain('POSTHOG_API_KEY');
    } finally {
      status = 200;
    }
  });

  it('fails closed without credentials', async () => {
    const get = awsSecretFetcher({ endpoint, credentials: () => { throw new Error('no AWS credentials'); } });
    await expect(get(POSTHOG_ARN)).rejects.toThrow(/no AWS credentials/);
  });

  it('goes through the signed JSON client: a 5xx or throttling answer is retried', async () => {
    const answers: Array<[number, unknown]> = [
      [500, { __type: 'InternalServiceError', message: 'try again' }],
      [400, { __type: 'com.amazonaws.secretsmanager#ThrottlingException', message: 'Rate exceeded' }],
    ];
    answer = { ARN: POSTHOG_ARN, SecretString: SECRET };
    const before = requests.length;
    const original = server.listeners('request')[0] as (...a: unknown[]) => void;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res) => {
      const next = answers.shift();
      if (!next) return original(req, res);
      req.resume();
      req.on('end', () => {
        requests.push({ headers: req.headers, body: '' });
        res.writeHead(next[0], { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(next[1]));
      });
    });
    try {
      const get = awsSecretFetcher({ endpoint, credentials: creds, retryBaseMs: 1 });
      expect(await get(POSTHOG_ARN)).toEqual({ SecretString: SECRET });
      expect(requests.length - before).toBe(3);
    } finally {
      server.removeAllListeners('request');
      server.on('request', original);
    }
  });

  it('AWS_ENDPOINT_URL_SECRETS_MANAGER is honoured (src/config.ts reads it)', async () => {
    answer = { ARN: POSTHOG_ARN, SecretString: SECRET };
    const saved = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = endpoint;
    try {
      const before = requests.length;
      expect(await awsSecretFetcher({ credentials: creds })(POSTHOG_ARN)).toEqual({ SecretString: SECRET });
      expect(requests.length).toBe(before + 1);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved;
    }
  });
});

describe('SecretEnv and lazy(): optional secrets are retried later, not given up', () => {
  const PERSONAL_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:tally/dev/personal';

  it('a required secret that fails fails the invocation; the next invocation tries again', async () => {
    let fail = true;
    const fetchSecret = async (id: string) => {
      sm.calls.push(id);
      if (fail) throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
      return { SecretString: 'key-one-123' };
    };
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN };
    const h = lazy(() => async () => env.TALLY_API_KEYS, { env, fetchSecret });
    await expect(h()).rejects.toThrow(/AccessDeniedException/);
    fail = false;
    await expect(h()).resolves.toBe('key-one-123');
    expect(sm.calls).toHaveLength(2);
  });

  it('an optional secret that fails: the handler is built without it, tried again after the retry period, and rebuilt once it resolves', async () => {
    let now = 1_000_000;
    let personalFails = true;
    const fetchSecret = async (id: string) => {
      sm.calls.push(id);
      if (id === PERSONAL_ARN && personalFails) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
      return { SecretString: id === API_KEYS_ARN ? 'key-one-123' : 'phx_personal' };
    };
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN, POSTHOG_PERSONAL_API_KEY_SECRET_ARN: PERSONAL_ARN };
    const logged: string[] = [];
    let builds = 0;
    const h = lazy(
      () => {
        builds++;
        const personal = env.POSTHOG_PERSONAL_API_KEY;
        return async () => ({ keys: env.TALLY_API_KEYS, sampling: personal !== undefined });
      },
      { env, fetchSecret, optionalSecrets: ['POSTHOG_PERSONAL_API_KEY'], retryOptionalAfterMs: 60_000, log: (m) => logged.push(m) },
    );
    // A fake clock for the retry period.
    const realNow = Date.now;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      expect(await h()).toEqual({ keys: 'key-one-123', sampling: false });
      expect(logged).toEqual([expect.stringContaining('POSTHOG_PERSONAL_API_KEY')]);
      expect(env.POSTHOG_PERSONAL_API_KEY_SECRET_ARN).toBe(PERSONAL_ARN); // not deleted: retried later
      const calls = sm.calls.length;
      now += 30_000;
      expect(await h()).toEqual({ keys: 'key-one-123', sampling: false });
      expect(sm.calls.length).toBe(calls); // within the retry period: no call
      now += 31_000;
      personalFails = false;
      expect(await h()).toEqual({ keys: 'key-one-123', sampling: true }); // resolved and rebuilt
      expect(builds).toBe(2);
      now += 120_000;
      const after = sm.calls.length;
      await h();
      expect(sm.calls.length).toBe(after); // nothing pending any more
    } finally {
      (Date.now as jest.Mock).mockRestore?.();
      Date.now = realNow;
    }
  });

  it('SecretEnv resolves the required secrets only, leaving the optional ones to refreshOptional', async () => {
    sm.on(API_KEYS_ARN).resolves({ SecretString: 'key-one-123' });
    sm.on(POSTHOG_ARN).resolves({ SecretString: SECRET });
    const env: Record<string, string | undefined> = { TALLY_API_KEYS_SECRET_ARN: API_KEYS_ARN, POSTHOG_API_KEY_SECRET_ARN: POSTHOG_ARN };
    const secrets = new SecretEnv(env, { optional: ['POSTHOG_API_KEY'], fetchSecret: sm.fetch });
    await secrets.resolveRequired();
    expect(env.TALLY_API_KEYS).toBe('key-one-123');
    expect(env.POSTHOG_API_KEY).toBeUndefined();
    expect(secrets.optionalDue()).toBe(true);
    expect(await secrets.refreshOptional()).toBe(true);
    expect(env.POSTHOG_API_KEY).toBe(SECRET);
    expect(secrets.optionalDue()).toBe(false);
  });
});
