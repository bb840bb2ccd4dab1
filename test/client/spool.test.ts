/**
 * The spool on a real directory, against the tally stand-in: what is on disk when `track()` returns,
 * replay of sealed and open segments with the same batches (so nothing counts twice), the disk bound,
 * the lock. The SIGKILL case is in spool-kill.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTally, uuidv7, type Tally, type TallyError, type TallyOptions } from '../../client/src';
import { startTallyStandin, type TallyStandin } from '../support/tally-standin';
import { sleep, until } from '../support/wait';

const KEY = 'tally_standin_key';
let standin: TallyStandin;
let dir: string;
const clients: Tally[] = [];

beforeEach(async () => {
  standin = await startTallyStandin({ key: KEY });
  dir = mkdtempSync(join(tmpdir(), 'tally-spool-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.shutdown({ timeoutMs: 0 });
  await standin.stop();
  rmSync(dir, { recursive: true, force: true });
});

function client(o: Partial<TallyOptions> = {}, errors: TallyError[] = []): Tally {
  const t = createTally({ url: standin.url, key: KEY, spool: dir, onError: (e) => errors.push(e), retryBaseDelayMs: 5, retryMaxDelayMs: 50, ...o });
  clients.push(t);
  return t;
}
const segments = () => readdirSync(dir).filter((n) => n !== 'lock').sort();
const uuidsIn = (name: string) =>
  readFileSync(join(dir, name), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { uuid: string }).uuid);

it('has each event on disk when track() returns, one segment per batch, and deletes a segment once tally took it', async () => {
  await standin.goDown();
  const t = client({ flushAt: 100, flushIntervalMs: 60_000 });
  const uuids: string[] = [];
  for (let i = 0; i < 250; i++) {
    uuids.push(t.track({ distinctId: `u${i % 5}` })!);
    // Read back at once: the write happened inside track().
    if (i === 149) expect(segments().flatMap(uuidsIn)).toEqual(uuids);
  }
  const names = segments();
  expect(names.map((n) => n.replace(/^.*\./, ''))).toEqual(['batch', 'batch', 'open']);
  expect(names.map((n) => uuidsIn(n).length)).toEqual([100, 100, 50]);
  expect(names.flatMap(uuidsIn)).toEqual(uuids);
  await standin.comeBack();
  await t.flush({ timeoutMs: 5000 });
  expect(t.stats()).toMatchObject({ delivered: 250, queued: 0 });
  expect(segments()).toEqual([]);
});

it('replays what an earlier process left, batch for batch, so tally counts each event once', async () => {
  // The first process: tally takes the first batch but the answer is lost, then tally is down.
  const first = client({ flushAt: 100, flushIntervalMs: 60_000 });
  standin.respond = (_r, i) => (i === 0 ? 'lose' : { status: 503 });
  const uuids = Array.from({ length: 100 }, (_, i) => first.track({ distinctId: `u${i % 5}` })!);
  await until(() => standin.requests.length >= 1);
  await standin.goDown();
  uuids.push(...Array.from({ length: 130 }, (_, i) => first.track({ distinctId: `v${i % 5}` })!));
  await first.shutdown({ timeoutMs: 0 });
  clients.splice(0);
  await sleep(100); // its request in flight fails: tally is down
  expect(segments().map((n) => uuidsIn(n).length)).toEqual([100, 100, 30]);

  // The next process replays: the lost batch is resent with the same uuids in the same order.
  await standin.comeBack();
  standin.respond = (r) => ({ status: 202, body: `{"accepted":${r.uuids.length}}` });
  const second = client({ flushAt: 100 });
  expect(second.stats()).toMatchObject({ replayed: 230, tracked: 0, queued: 230 });
  await second.flush({ timeoutMs: 5000 });
  expect(second.stats()).toMatchObject({ replayed: 230, delivered: 230, queued: 0 });
  expect(standin.requests[0]!.uuids).toEqual(uuids.slice(0, 100));
  // Sent before the crash (its answer lost), perhaps retried before tally went down, and replayed.
  expect(standin.requests.filter((r) => r.uuids.join() === uuids.slice(0, 100).join()).length).toBeGreaterThanOrEqual(2);
  expect(standin.countedTwice()).toEqual([]);
  expect(standin.lost(uuids)).toEqual([]);
  expect(segments()).toEqual([]);
});

it('seals an .open segment found at start (never sent) and skips a torn last line', async () => {
  const line = (u: string, d: string) => JSON.stringify({ uuid: u, distinctId: d, event: 'api_call', timestamp: Date.now() });
  const a = [uuidv7(), uuidv7()];
  const b = [uuidv7(), uuidv7(), uuidv7()];
  writeFileSync(join(dir, '000001000000000-1-00000000.batch'), `${line(a[0]!, 'x')}\n${line(a[1]!, 'y')}\n`);
  writeFileSync(join(dir, '000001000000001-1-00000001.open'), `${b.map((u) => line(u, 'z')).join('\n')}\n{"uuid":"01`);
  const errors: TallyError[] = [];
  const t = client({}, errors);
  expect(t.stats()).toMatchObject({ replayed: 5, spoolErrors: 1 });
  expect(errors.map((e) => e.code)).toEqual(['spool_failed']);
  await t.flush();
  expect(standin.requests.map((r) => r.uuids)).toEqual([a, b]);
  expect(segments()).toEqual([]);
});

it('keeps the disk within maxQueue while tally is down, dropping the oldest segments', async () => {
  await standin.goDown();
  const t = client({ flushAt: 100, maxQueue: 300, concurrency: 1, flushIntervalMs: 60_000 });
  for (let i = 0; i < 1000; i++) t.track({ distinctId: i });
  const onDisk = segments().reduce((n, s) => n + uuidsIn(s).length, 0);
  expect(onDisk).toBeLessThanOrEqual(300);
  expect(t.stats()).toMatchObject({ queued: onDisk, dropped: 1000 - onDisk });
  // A restart with a smaller bound drops the oldest segments first.
  await t.shutdown({ timeoutMs: 0 });
  clients.splice(0);
  // The request in flight at shutdown fails (tally is down) and is not retried.
  await sleep(100);
  const kept = segments().slice(-1).flatMap(uuidsIn);
  const again = client({ flushAt: 100, maxQueue: 100 });
  expect(again.stats()).toMatchObject({ replayed: 100, dropped: onDisk - 100 });
  await standin.comeBack();
  await again.flush({ timeoutMs: 5000 });
  expect(standin.requests.filter((r) => r.counted).flatMap((r) => r.uuids)).toEqual(kept);
});

it('refuses a directory a running client holds, and takes over the lock of a dead process', () => {
  client();
  expect(() => createTally({ url: standin.url, key: KEY, spool: dir })).toThrow(expect.objectContaining({ code: 'spool_locked' }));
  const other = mkdtempSync(join(tmpdir(), 'tally-spool-'));
  try {
    // The pid of a process that has exited.
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
    writeFileSync(join(other, 'lock'), String(dead));
    const t = createTally({ url: standin.url, key: KEY, spool: other });
    clients.push(t);
    expect(readFileSync(join(other, 'lock'), 'utf8')).toBe(String(process.pid));
    // A live process's lock (this test runner's parent) is respected.
    const dir2 = mkdtempSync(join(tmpdir(), 'tally-spool-'));
    writeFileSync(join(dir2, 'lock'), String(process.ppid));
    expect(() => createTally({ url: standin.url, key: KEY, spool: dir2 })).toThrow(expect.objectContaining({ code: 'spool_locked' }));
    rmSync(dir2, { recursive: true, force: true });
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});
