/**
 * Sampling in the template (issue 4): off by default; with `samplingSecretName`, ingest gets the
 * personal/secret key and the project key as *_SECRET_ARN only (values never in the template), read
 * access to exactly those secrets, and the flag settings as plain environment.
 */
import { AwsSolutionsChecks } from 'cdk-nag';
import { routeKeysOf } from '../../lib/ingest-api';
import { FLAG_PROXY_TIMEOUT_MS, INGEST } from '../../lib/sizing';
import { fn, grants, refId, resourcesOfType, synth, type Synth } from './support';

const SECRET_VALUES = { POSTHOG_API_KEY: 'phc_NEVER_IN_TEMPLATE_1234', POSTHOG_PERSONAL_API_KEY: 'phx_NEVER_IN_TEMPLATE_5678' };
let on: Synth;
let off: Synth;
const saved: Record<string, string | undefined> = {};

beforeAll(() => {
  // Even with the values in the synthesizing process's environment, none may reach the template.
  for (const [k, v] of Object.entries(SECRET_VALUES)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  on = synth({ samplingSecretName: 'tally/dev/posthog-personal-key', samplingPersonProperties: 'firstRouteCalled=route', samplingTimeoutMs: 800 });
  off = synth();
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const env = (s: Synth) => fn(s.json, 'ingest').Environment.Variables as Record<string, unknown>;

describe('sampling off (default)', () => {
  it('ingest gets no PostHog secret and no sampling settings', () => {
    const e = env(off);
    for (const k of Object.keys(e)) expect(k).not.toMatch(/^POSTHOG_|^TALLY_SAMPLING_|^TALLY_FLAGS_/);
  });
});

describe('sampling on (samplingSecretName)', () => {
  it('passes both keys as secret ARNs and the flag settings as plain values', () => {
    const e = env(on);
    expect(JSON.stringify(e.POSTHOG_PERSONAL_API_KEY_SECRET_ARN)).toContain(':secret:tally/dev/posthog-personal-key');
    expect(JSON.stringify(e.POSTHOG_API_KEY_SECRET_ARN)).toContain(':secret:tally/dev/posthog-api-key');
    expect(e).toMatchObject({
      POSTHOG_HOST: 'https://us.i.posthog.com',
      TALLY_SAMPLING_FLAG_KEY: 'usage-sampling',
      TALLY_SAMPLING_PERSON_PROPERTIES: 'firstRouteCalled=route',
      TALLY_SAMPLING_TIMEOUT_MS: '800',
      TALLY_SAMPLING_POLL_SECONDS: '30',
      TALLY_FLAGS_PROXY_TIMEOUT_MS: String(FLAG_PROXY_TIMEOUT_MS),
    });
    expect(e).not.toHaveProperty('POSTHOG_API_KEY');
    expect(e).not.toHaveProperty('POSTHOG_PERSONAL_API_KEY');
  });

  it('no secret value anywhere in the template', () => {
    const text = JSON.stringify(on.json);
    for (const v of Object.values(SECRET_VALUES)) expect(text).not.toContain(v);
    expect(text).not.toMatch(/ph[cxs]_[A-Za-z0-9]{8,}/);
  });

  it('ingest may read exactly the API keys, the token secret, the PostHog project key and the sampling key', () => {
    const g = grants(on.json, refId(fn(on.json, 'ingest').Role)!);
    const secrets = g['secretsmanager:GetSecretValue']!;
    expect(secrets).toHaveLength(4);
    expect(secrets.filter((s) => s.includes(':secret:tally/dev/posthog-personal-key-??????'))).toHaveLength(1);
    expect(secrets.filter((s) => s.includes(':secret:tally/dev/posthog-api-key-??????'))).toHaveLength(1);
    // Beside the secrets, nothing sampling adds: the same grants as without it.
    const offGrants = grants(off.json, refId(fn(off.json, 'ingest').Role)!);
    expect(Object.keys(g).sort()).toEqual(Object.keys(offGrants).sort());
  });

  it('the other functions are unchanged', () => {
    for (const name of ['aggregator', 'rollup', 'query']) expect(fn(on.json, name).Environment).toEqual(fn(off.json, name).Environment);
  });

  it('the flag key, host and timeout follow context', () => {
    const s = synth({ samplingSecretName: 'x', samplingFlagKey: 'raw-sample', posthogHost: 'https://eu.i.posthog.com' });
    expect(env(s)).toMatchObject({ TALLY_SAMPLING_FLAG_KEY: 'raw-sample', POSTHOG_HOST: 'https://eu.i.posthog.com', TALLY_SAMPLING_TIMEOUT_MS: '1000' });
    expect(env(s)).not.toHaveProperty('TALLY_SAMPLING_PERSON_PROPERTIES');
  });

  it('the flag routes reach ingest', () => {
    expect(routeKeysOf('ingest')).toEqual(expect.arrayContaining(['POST /flags', 'GET /flags/definitions', 'POST /decide']));
    const keys = resourcesOfType(on.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties!.RouteKey);
    expect(keys).toEqual(expect.arrayContaining(['POST /flags', 'POST /flags/{proxy+}', 'GET /flags/definitions', 'POST /decide/{proxy+}']));
  });

  it('PostHog on the request path fits inside the ingest timeout', () => {
    // Worst cold start: the first definitions and the raw capture, each bounded by the largest samplingTimeoutMs.
    expect(2 * 3000 + 1000).toBeLessThan(INGEST.timeoutSeconds * 1000);
    expect(FLAG_PROXY_TIMEOUT_MS).toBeLessThan(INGEST.timeoutSeconds * 1000);
  });

  it('cdk-nag reports nothing', () => {
    const findings = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(on.stack).violations;
    expect(findings.map((v) => v.ruleName)).toEqual([]);
  });
});
