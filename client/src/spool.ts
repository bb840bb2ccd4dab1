/**
 * The crash-safe spool: every tracked event is appended (one `write(2)`, before `track()` returns) to
 * the open segment file of its batch; when the batch is cut, its segment is renamed from `.open` to
 * `.batch` *before* the batch is first sent, and deleted once tally acknowledged it (or refused it for
 * good, or it was dropped to respect `maxQueue`). A segment is exactly one batch, so cleaning up is
 * deleting whole files: there is nothing to compact, and the disk holds at most `maxQueue` events
 * plus the open segment.
 *
 * On the next start, `.batch` segments are resent as they were (same events, same order, same uuids:
 * tally counts a batch it already took once), and `.open` segments, never sent, become batches.
 *
 * A `lock` file holding the owner's pid keeps two live processes off one directory.
 */
import { TallyError } from './errors';
import { nodeBuiltin, processAlive, type NodeFs } from './platform';

/** A batch read back from the spool. */
export interface SpooledBatch {
  file: string;
  lines: string[];
}

const OPEN = '.open';
const SEALED = '.batch';
const LOCK = 'lock';

/** Directories this process has open: the pid in a lock cannot tell two clients of one process apart. */
const openHere = new Set<string>();

const join = (dir: string, name: string): string => `${dir.replace(/[\\/]+$/, '')}/${name}`;

export class Spool {
  private fd: number | undefined;
  private openFile: string | undefined;
  private seq = 0;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly fs: NodeFs,
    private readonly pid: number,
  ) {}

  /** Opens (creating) `dir` and takes its lock; throws `spool_locked` if a live process holds it. */
  static open(dir: string): Spool {
    const fs = nodeBuiltin<NodeFs>('node:fs');
    if (!fs) throw new TallyError('invalid_options', 'spool needs node:fs (Node ≥ 20.16, or a runtime with process.getBuiltinModule)');
    const pid = (globalThis as unknown as { process?: { pid?: number } }).process?.pid ?? 0;
    const key = dir.replace(/[\\/]+$/, '');
    if (openHere.has(key)) throw new TallyError('spool_locked', `spool ${dir} is already used by another tally client in this process`);
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new TallyError('invalid_options', `spool ${dir} cannot be created: ${(err as Error).message}`, { cause: err });
    }
    const lock = join(dir, LOCK);
    try {
      fs.writeFileSync(lock, String(pid), { flag: 'wx' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw new TallyError('invalid_options', `spool ${dir} is not writable: ${(err as Error).message}`, { cause: err });
      const owner = Number(fs.readFileSync(lock, 'utf8').trim());
      // A lock left by a process that died (kill -9) is taken over; so is one with our own pid (a
      // container restarts with the same pid, and no other process can have it).
      if (owner > 0 && owner !== pid && processAlive(owner)) throw new TallyError('spool_locked', `spool ${dir} is used by running process ${owner}`);
      fs.writeFileSync(lock, String(pid));
    }
    openHere.add(key);
    return new Spool(key, fs, pid);
  }

  /**
   * Every batch left by an earlier process, oldest first. `.open` segments are sealed as they are.
   * A line that is not a JSON object with a uuid (a write torn by a machine crash) is left out and
   * reported through `onBadLine`.
   */
  replay(onBadLine: (file: string, line: string) => void): SpooledBatch[] {
    const out: SpooledBatch[] = [];
    const names = this.fs
      .readdirSync(this.dir)
      .filter((n) => n.endsWith(OPEN) || n.endsWith(SEALED))
      .sort();
    for (const name of names) {
      let file = join(this.dir, name);
      const lines: string[] = [];
      for (const line of this.fs.readFileSync(file, 'utf8').split('\n')) {
        if (line === '') continue;
        let ok = false;
        try {
          const e = JSON.parse(line) as { uuid?: unknown };
          ok = e !== null && typeof e === 'object' && typeof e.uuid === 'string';
        } catch {
          ok = false;
        }
        if (ok) lines.push(line);
        else onBadLine(file, line);
      }
      if (lines.length === 0) {
        this.remove(file);
        continue;
      }
      if (name.endsWith(OPEN)) {
        const sealed = file.slice(0, -OPEN.length) + SEALED;
        this.fs.renameSync(file, sealed);
        file = sealed;
      }
      out.push({ file, lines });
    }
    return out;
  }

  /** Appends one event to the open segment, creating it on the first event of a batch. */
  append(json: string): void {
    if (this.fd === undefined) {
      const name = `${Date.now().toString().padStart(15, '0')}-${this.pid}-${String(this.seq++).padStart(8, '0')}${OPEN}`;
      this.openFile = join(this.dir, name);
      this.fd = this.fs.openSync(this.openFile, 'ax');
    }
    this.fs.writeSync(this.fd, `${json}\n`);
  }

  /** Seals the open segment (`.open` → `.batch`) and returns its path; the batch may now be sent. */
  seal(): string | undefined {
    const file = this.closeOpen();
    if (!file) return undefined;
    const sealed = file.slice(0, -OPEN.length) + SEALED;
    this.fs.renameSync(file, sealed);
    return sealed;
  }

  /** Deletes the open segment: its batch differs from the file (a write failed), so it must not be replayed as a sent batch. */
  discardOpen(): void {
    const file = this.closeOpen();
    if (file) this.remove(file);
  }

  /** Deletes a segment whose batch is done with. */
  remove(file: string): void {
    try {
      this.fs.unlinkSync(file);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }

  /** Closes the open segment (kept for the next start) and releases the lock. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeOpen();
    openHere.delete(this.dir);
    try {
      this.fs.unlinkSync(join(this.dir, LOCK));
    } catch {
      /* already gone */
    }
  }

  private closeOpen(): string | undefined {
    const file = this.openFile;
    if (this.fd !== undefined) {
      try {
        this.fs.closeSync(this.fd);
      } finally {
        this.fd = undefined;
        this.openFile = undefined;
      }
    }
    return file;
  }
}
