/**
 * Projects, keys, client tokens and limits against dynalite (the real DynamoDB wire protocol).
 */
import { AdminInputError, ProjectAdmin } from '../../src/projects/admin';
import { Authenticator } from '../../src/projects/auth';
import { QuotaChecker, RateLimiter } from '../../src/projects/limits';
import { ProjectStore } from '../../src/projects/store';
import { signToken } from '../../src/projects/tokens';
import type { DynamoApi } from '../../src/store/dynamo-api';
import { faultyApi, startTestDynamo, type TestDynamo } from '../support/store';

let db: TestDynamo;
beforeAll(async () => {
  db = await startTestDynamo();
});
afterAll(async () => {
  await db.stop();
});

const MASTER = Buffer.from('a master secret of thirty-two b!');

async function setup() {
  const table = await db.newTable();
  let t = Date.parse('2026-12-01T12:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  let down = false;
  const api: DynamoApi = faultyApi(db.api, () => down);
  const store = new ProjectStore(api, table);
  const admin = new ProjectAdmin(new ProjectStore(db.api, table), clock.now);
  const auth = new Authenticator({ store, tokenSecret: MASTER, now: clock.now });
  return { table, store, admin, auth, clock, setDown: (d: boolean) => (down = d) };
}

const status = (p: Promise<unknown>) => p.then(() => 200, (e: { statusCode?: number; code?: string }) => `${e.statusCode} ${e.code}`);

describe('projects and keys (dynalite)', () => {
  it('create → use → rotate (both keys during the grace, only the new after) → revoke (refused within the cache TTL)', async () => {
    const s = await setup();
    await s.admin.createProject('shop', { ip: 'anonymise', origins: ['https://shop.example.com'] });
    const { key, record } = await s.admin.createKey('shop', { name: 'backend', scopes: ['ingest'] });
    expect(key).toMatch(/^tk_/);
    expect(JSON.stringify(await s.admin.listKeys('shop'))).not.toContain(key); // only the hash is stored
    const a = await s.auth.authenticate(key, 'ingest');
    expect(a.principal).toMatchObject({ project: 'shop', keyId: record.id, scopes: ['ingest'] });
    expect(a.project.ip).toBe('anonymise');
    expect(await status(s.auth.authenticate(key, 'query'))).toBe('403 forbidden');

    const rotated = await s.admin.rotateKey(record.id, 3_600_000);
    s.clock.advance(31_000); // past the cache TTL
    expect(await status(s.auth.authenticate(key, 'ingest'))).toBe(200);
    expect(await status(s.auth.authenticate(rotated.key, 'ingest'))).toBe(200);
    s.clock.advance(3_600_000);
    expect(await status(s.auth.authenticate(key, 'ingest'))).toBe('401 unauthorized');
    expect(await status(s.auth.authenticate(rotated.key, 'ingest'))).toBe(200);

    await s.admin.revokeKey(rotated.record.id);
    // Cached for up to 30 s: still accepted right after, refused once the entry is older than that.
    expect(await status(s.auth.authenticate(rotated.key, 'ingest'))).toBe(200);
    s.clock.advance(30_001);
    expect(await status(s.auth.authenticate(rotated.key, 'ingest'))).toBe('401 unauthorized');
    // Listed by id (random): one key past its grace, one revoked, both kept for the record.
    const listed = (await s.admin.listKeys('shop')).map((k) => [k.id, k.revoked ?? false]).sort((a, b) => Number(a[1]) - Number(b[1]));
    expect(listed).toEqual([
      [record.id, false],
      [rotated.record.id, true],
    ]);
  });

  it('checks the shape before any lookup', async () => {
    const s = await setup();
    s.setDown(true); // any lookup would fail with 503
    for (const bad of [undefined, '', 'tk_short', `tk_${'x'.repeat(39)}é`, 'naïve key', `tk_${'a'.repeat(80)}`]) {
      expect(await status(s.auth.authenticate(bad, 'ingest'))).toBe('401 unauthorized');
    }
  });

  it('keeps cached keys working while the key store is down; an unknown key then gets 503, never 2xx', async () => {
    const s = await setup();
    await s.admin.createProject('p1');
    const { key } = await s.admin.createKey('p1');
    await s.auth.authenticate(key, 'ingest');
    s.setDown(true);
    s.clock.advance(5 * 60_000); // stale, within the bound
    expect(await status(s.auth.authenticate(key, 'ingest'))).toBe(200);
    const other = await s.admin.createKey('p1');
    expect(await status(s.auth.authenticate(other.key, 'ingest'))).toBe('503 auth_unavailable');
    s.clock.advance(10 * 60_000); // past the bound: not even the cached key
    expect(await status(s.auth.authenticate(key, 'ingest'))).toBe('503 auth_unavailable');
    s.setDown(false);
    expect(await status(s.auth.authenticate(other.key, 'ingest'))).toBe(200);
  });

  it('verifies client tokens in memory: valid, expired, forged, and revoked by the project', async () => {
    const s = await setup();
    await s.admin.createProject('app');
    const t = signToken({ project: 'app', distinctId: 'user-9', ttlSeconds: 900, version: 1 }, MASTER, s.clock.now());
    expect((await s.auth.authenticate(t.token, 'ingest')).principal).toMatchObject({ project: 'app', distinctId: 'user-9', keyId: 'token' });
    expect(await status(s.auth.authenticate(t.token, 'query'))).toBe('403 forbidden');
    s.clock.advance(900_000);
    expect(await status(s.auth.authenticate(t.token, 'ingest'))).toBe('401 token_expired');
    const forged = signToken({ project: 'app', ttlSeconds: 60, version: 1 }, Buffer.from('not the master secret, 32 bytes!'), s.clock.now()).token;
    expect(await status(s.auth.authenticate(forged, 'ingest'))).toBe('401 unauthorized');
    const fresh = signToken({ project: 'app', ttlSeconds: 60, version: 1 }, MASTER, s.clock.now()).token;
    await s.admin.updateProject('app', { revokeTokens: true });
    s.clock.advance(30_001);
    expect(await status(s.auth.authenticate(fresh, 'ingest'))).toBe('401 unauthorized');
  });

  it('refuses bad settings naming the field, and changes nothing', async () => {
    const s = await setup();
    const bad = async (f: () => Promise<unknown>) => f().then(() => undefined, (e: unknown) => (e instanceof AdminInputError ? e.message : String(e)));
    expect(await bad(() => s.admin.createProject('Bad Name'))).toContain('name:');
    expect(await bad(() => s.admin.createProject('x', { origins: ['https://a.example.com/path'] }))).toContain('origins.0');
    expect(await bad(() => s.admin.createProject('x', { posthog: { key: 'phs_secret', host: 'https://eu.i.posthog.com' } }))).toContain('posthog.key');
    expect(await bad(() => s.admin.createProject('x', { rate: { perSecond: 100, burst: 10 } }))).toContain('rate.burst');
    expect(await s.admin.listProjects()).toEqual([]);
    await s.admin.createProject('x');
    expect(await bad(() => s.admin.createProject('x'))).toContain('exists');
    expect(await bad(() => s.admin.rotateKey('key_nope', 0))).toContain('no key');
  });

  it('imports configured keys into the default project once, with every scope', async () => {
    const s = await setup();
    // No configured keys: nothing to import, and not even project default is created (no cold-start read).
    expect(await s.admin.importConfiguredKeys([])).toBe(0);
    expect(await s.admin.listProjects()).toEqual([]);
    expect(await s.admin.importConfiguredKeys(['configured-key-0001', 'configured-key-0002'])).toBe(2);
    expect(await s.admin.importConfiguredKeys(['configured-key-0001', 'configured-key-0002'])).toBe(0);
    const a = await s.auth.authenticate('configured-key-0001', 'query');
    expect(a.principal.project).toBe('default');
    const [k] = await s.admin.listKeys('default');
    await s.admin.revokeKey(k!.id);
    // Revoked stays revoked across restarts (the import does not bring it back).
    expect(await s.admin.importConfiguredKeys(['configured-key-0001'])).toBe(0);
    s.clock.advance(30_001);
    expect(await status(s.auth.authenticate('configured-key-0001', 'ingest'))).toBe('401 unauthorized');
  });
});

describe('limits (dynalite)', () => {
  it('never admits more than rate × t + burst across instances sharing the bucket', async () => {
    const s = await setup();
    const p = await s.admin.createProject('rl', { rate: { perSecond: 100, burst: 200 } });
    const instances = [new RateLimiter(s.store, s.clock.now), new RateLimiter(s.store, s.clock.now), new RateLimiter(s.store, s.clock.now)];
    let admitted = 0;
    let refused = 0;
    // 5 virtual seconds, 60 calls per instance every 100 ms: 3 × 600/s offered against 100/s.
    for (let tick = 0; tick < 50; tick++) {
      for (const rl of instances) {
        for (let c = 0; c < 6; c++) {
          const d = await rl.admit(p, 10);
          if (d.admitted) admitted += 10;
          else {
            refused += 10;
            expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          }
        }
      }
      s.clock.advance(100);
    }
    expect(admitted).toBeLessThanOrEqual(100 * 5 + 200);
    expect(admitted).toBeGreaterThan(100 * 5 * 0.6); // and does not starve
    expect(refused).toBeGreaterThan(0);
    // A request larger than the burst can never pass.
    expect((await instances[0]!.admit(p, 201)).admitted).toBe(false);
  });

  it('refuses once the month total reaches the quota, re-reading at most once a minute', async () => {
    const s = await setup();
    const p = await s.admin.createProject('q', { monthlyQuota: 1000 });
    let total = 999;
    let reads = 0;
    const quota = new QuotaChecker(async () => (reads++, total), s.clock.now);
    expect(await quota.exceeded(p)).toBe(false);
    total = 1000;
    expect(await quota.exceeded(p)).toBe(false); // the minute-old answer
    s.clock.advance(60_000);
    expect(await quota.exceeded(p)).toBe(true);
    expect(reads).toBe(2);
    expect(await quota.exceeded({ ...p, monthlyQuota: undefined })).toBe(false);
  });
});
