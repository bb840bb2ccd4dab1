/**
 * The CLI (`npm run tally -- …`), run in-process against a data directory (npm start not running) and
 * against a running local stack (found through its stack.json), as an operator would use it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, run } from '../../cli/tally';
import { startLocalStack } from '../../local/stack';
import { ProjectStore } from '../../src/projects/store';
import { NoopSink } from '../../src/sink/print';

jest.setTimeout(60_000);

const cli = (dir: string, ...args: string[]) => run(args, { TALLY_DATA_DIR: dir });

test('against a data directory: projects and keys, JSON output, bad input refused with nothing changed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'));
  const created = await cli(dir, 'projects', 'create', 'shop', '--ip', 'anonymise', '--rate', '50', '--burst', '100', '--quota', '1000000', '--origins', 'https://shop.example.com', '--json');
  expect(created.code).toBe(0);
  expect(JSON.parse(created.out)).toMatchObject({ name: 'shop', ip: 'anonymise', rate: { perSecond: 50, burst: 100 }, quota: 1000000, origins: ['https://shop.example.com'] });

  const key = JSON.parse((await cli(dir, 'keys', 'create', '--project', 'shop', '--name', 'backend', '--scopes', 'ingest,query', '--json')).out) as { id: string; key: string; project: string; scopes: string[] };
  expect(key).toMatchObject({ project: 'shop', scopes: ['ingest', 'query'] });
  expect(key.key).toMatch(/^tk_[0-9A-Za-z]{40}$/);
  const listed = JSON.parse((await cli(dir, 'keys', 'list', '--project', 'shop', '--json')).out) as { keys: Array<Record<string, unknown>> };
  expect(listed.keys).toHaveLength(1);
  expect(JSON.stringify(listed)).not.toContain(key.key);

  const rotated = JSON.parse((await cli(dir, 'keys', 'rotate', key.id, '--grace', '2h', '--json')).out) as { id: string; key: string; oldKeyExpiresAt: string };
  expect(rotated.id).not.toBe(key.id);
  expect(Date.parse(rotated.oldKeyExpiresAt) - Date.now()).toBeGreaterThan(7_100_000);
  expect((await cli(dir, 'keys', 'revoke', rotated.id)).out).toContain('revoked');

  const updated = JSON.parse((await cli(dir, 'projects', 'update', 'shop', '--quota', '5', '--revoke-tokens', '--json')).out) as { quota: number; tokenVersion: number };
  expect(updated).toMatchObject({ quota: 5, tokenVersion: 2 });

  for (const [args, want] of [
    [['projects', 'create', 'Bad Name'], 'name:'],
    [['projects', 'create', 'x', '--ip', 'maybe'], 'ip:'],
    [['projects', 'create', 'x', '--rate', 'fast'], 'rate:'],
    [['keys', 'create', '--project', 'shop', '--scopes', 'ingest,root'], 'scopes:'],
    [['keys', 'create'], '--project is required'],
    [['keys', 'rotate', 'key_nope'], 'no key'],
    [['keys', 'rotate', key.id, '--grace', 'forever'], 'grace:'],
    [['frobnicate'], 'unknown command'],
    [['projects', 'list', '--bogus'], 'Unknown option'],
  ] as Array<[string[], string]>) {
    const r = await cli(dir, ...args);
    expect(r.code).toBe(2);
    expect(r.out).toContain(want);
  }
  const projects = JSON.parse((await cli(dir, 'projects', 'list', '--json')).out) as { projects: Array<{ name: string }> };
  expect(projects.projects.map((p) => p.name)).toEqual(['shop']);
});

test('against a running npm start: changes reach its DynamoDB at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-live-'));
  const stack = await startLocalStack({ port: 0, apiKey: 'tally_cli_key_0123456789', sink: new NoopSink() });
  try {
    writeFileSync(join(dir, 'stack.json'), JSON.stringify({ pid: process.pid, url: stack.url, dynamoEndpoint: stack.dynamoEndpoint, tableName: stack.tableName }));
    expect((await cli(dir, 'projects', 'create', 'live')).code).toBe(0);
    const store = new ProjectStore(stack.store.db, stack.tableName);
    expect((await store.getProject('live'))?.id).toBe('live');
  } finally {
    await stack.stop();
  }
});

test('durations', () => {
  expect(parseDuration('24h')).toBe(86_400_000);
  expect(parseDuration('90m')).toBe(5_400_000);
  expect(parseDuration('1500')).toBe(1500);
  expect(() => parseDuration('soon')).toThrow('grace');
});
