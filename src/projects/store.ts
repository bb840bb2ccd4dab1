/**
 * Projects and keys in the table (layout beside the counters', src/store/keys.ts):
 *
 * | item | pk | sk |
 * |---|---|---|
 * | a project (its settings as JSON) | `PROJECTS` | `<project>` |
 * | a key, by hash: what ingest looks up | `KEY#<sha256>` | `k` |
 * | a key, by project: what `keys list` reads | `KEYS#<project>` | `<key id>` |
 * | a project's rate-limit bucket | `RL#<project>` | `b` |
 *
 * A key's two items are written together, the lookup item last on creation and first on revocation,
 * so a key is never usable without being listed, nor listed as revoked while still usable.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoApi } from '../store/dynamo-api';
import type { KeyRecord, Project, Scope } from './types';

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const isConditionFailed = (err: unknown): boolean => (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/** A project that already exists, or a key id that does not. */
export class ProjectStoreError extends Error {
  constructor(
    readonly code: 'exists' | 'not_found',
    message: string,
  ) {
    super(message);
    this.name = 'ProjectStoreError';
  }
}

function keyRecord(i: Record<string, AttributeValue>, hash: string): KeyRecord {
  return {
    id: i.id!.S!,
    project: i.p!.S!,
    name: i.nm?.S ?? '',
    scopes: (i.sc?.SS ?? []) as Scope[],
    hash,
    prefix: i.pf?.S ?? '',
    createdAt: Number(i.ca?.N ?? 0),
    ...(i.ex?.N !== undefined ? { expiresAt: Number(i.ex.N) } : {}),
    ...(i.rv?.BOOL ? { revoked: true } : {}),
    ...(i.lu?.N !== undefined ? { lastUsedAt: Number(i.lu.N) } : {}),
  };
}

function keyAttributes(k: KeyRecord): Record<string, AttributeValue> {
  return {
    id: S(k.id),
    p: S(k.project),
    nm: S(k.name || '-'),
    sc: { SS: [...k.scopes] },
    pf: S(k.prefix),
    ca: N(k.createdAt),
    ...(k.expiresAt !== undefined ? { ex: N(k.expiresAt) } : {}),
    ...(k.revoked ? { rv: { BOOL: true } } : {}),
  };
}

export class ProjectStore {
  constructor(
    readonly db: DynamoApi,
    readonly tableName: string,
  ) {}

  // ── projects ──────────────────────────────────────────────────────────────────────────────────

  async createProject(p: Project): Promise<void> {
    try {
      await this.db.putItem({ TableName: this.tableName, Item: { pk: S('PROJECTS'), sk: S(p.id), j: S(JSON.stringify(p)) }, ConditionExpression: 'attribute_not_exists(pk)' });
    } catch (err) {
      if (isConditionFailed(err)) throw new ProjectStoreError('exists', `project ${p.id} exists`);
      throw err;
    }
  }

  async putProject(p: Project): Promise<void> {
    await this.db.putItem({ TableName: this.tableName, Item: { pk: S('PROJECTS'), sk: S(p.id), j: S(JSON.stringify(p)) } });
  }

  async getProject(id: string): Promise<Project | undefined> {
    const r = await this.db.getItem({ TableName: this.tableName, Key: { pk: S('PROJECTS'), sk: S(id) }, ConsistentRead: true });
    return r.Item?.j?.S ? (JSON.parse(r.Item.j.S) as Project) : undefined;
  }

  async listProjects(): Promise<Project[]> {
    const out: Project[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.query({ TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S('PROJECTS') }, ExclusiveStartKey: start, ConsistentRead: true });
      for (const i of r.Items ?? []) out.push(JSON.parse(i.j!.S!) as Project);
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  // ── keys ──────────────────────────────────────────────────────────────────────────────────────

  /** Stores a new key (listing first, then the lookup item: usable only once listed). Idempotent for the same hash. */
  async putKey(k: KeyRecord, o: { ifAbsent?: boolean } = {}): Promise<boolean> {
    await this.db.putItem({ TableName: this.tableName, Item: { pk: S(`KEYS#${k.project}`), sk: S(k.id), h: S(k.hash), ...keyAttributes(k) } });
    try {
      await this.db.putItem({
        TableName: this.tableName,
        Item: { pk: S(`KEY#${k.hash}`), sk: S('k'), ...keyAttributes(k) },
        ...(o.ifAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
      });
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // Already there (an imported configured key, on a later start): keep it, and its listing as it was.
      const existing = await this.getKeyByHash(k.hash);
      if (existing && existing.id !== k.id) await this.db.deleteItem({ TableName: this.tableName, Key: { pk: S(`KEYS#${k.project}`), sk: S(k.id) } });
      return false;
    }
  }

  /** The key with this hash, as ingest looks it up. */
  async getKeyByHash(hash: string): Promise<KeyRecord | undefined> {
    const r = await this.db.getItem({ TableName: this.tableName, Key: { pk: S(`KEY#${hash}`), sk: S('k') }, ConsistentRead: true });
    return r.Item ? keyRecord(r.Item, hash) : undefined;
  }

  async listKeys(project: string): Promise<KeyRecord[]> {
    const out: KeyRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.query({ TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S(`KEYS#${project}`) }, ExclusiveStartKey: start, ConsistentRead: true });
      for (const i of r.Items ?? []) out.push(keyRecord(i, i.h!.S!));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /** A key by id, searching every project's keys (for the CLI; projects are few). */
  async findKey(id: string): Promise<KeyRecord> {
    for (const p of await this.listProjects()) {
      const k = (await this.listKeys(p.id)).find((x) => x.id === id);
      if (k) return k;
    }
    throw new ProjectStoreError('not_found', `no key ${id}`);
  }

  /** Sets when a key stops working (rotation's grace end, or now for a revocation): lookup item first. */
  async expireKey(k: KeyRecord, at: number, revoked: boolean): Promise<void> {
    const set = revoked ? 'SET ex = :at, rv = :t' : 'SET ex = :at';
    const values: Record<string, AttributeValue> = revoked ? { ':at': N(at), ':t': { BOOL: true } } : { ':at': N(at) };
    await this.db.updateItem({ TableName: this.tableName, Key: { pk: S(`KEY#${k.hash}`), sk: S('k') }, UpdateExpression: set, ExpressionAttributeValues: values });
    await this.db.updateItem({ TableName: this.tableName, Key: { pk: S(`KEYS#${k.project}`), sk: S(k.id) }, UpdateExpression: set, ExpressionAttributeValues: values });
  }

  /** Records a use (callers throttle this: one write per key every few minutes). */
  async touchKey(k: KeyRecord, at: number): Promise<void> {
    await this.db.updateItem({ TableName: this.tableName, Key: { pk: S(`KEYS#${k.project}`), sk: S(k.id) }, UpdateExpression: 'SET lu = :at', ExpressionAttributeValues: { ':at': N(at) } });
  }

  // ── rate-limit buckets ────────────────────────────────────────────────────────────────────────

  /**
   * Takes up to `want` tokens from the project's bucket (refilled at `perSecond`, holding at most
   * `burst`), with an optimistic conditional write; returns how many it got (0 when empty).
   */
  async leaseTokens(project: string, want: number, perSecond: number, burst: number, now: number): Promise<number> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const r = await this.db.getItem({ TableName: this.tableName, Key: { pk: S(`RL#${project}`), sk: S('b') }, ConsistentRead: true });
      const version = r.Item?.vr?.N !== undefined ? Number(r.Item.vr.N) : undefined;
      const at = Number(r.Item?.at?.N ?? now);
      const have = version === undefined ? burst : Math.min(burst, Number(r.Item!.t!.N) + (Math.max(0, now - at) * perSecond) / 1000);
      const grant = Math.max(0, Math.min(want, Math.floor(have)));
      if (grant === 0 && version !== undefined) return 0;
      try {
        // A version number, not the time, guards the write: two instances may read in the same millisecond.
        await this.db.updateItem({
          TableName: this.tableName,
          Key: { pk: S(`RL#${project}`), sk: S('b') },
          UpdateExpression: 'SET t = :t, #at = :now, vr = :next',
          ConditionExpression: version === undefined ? 'attribute_not_exists(vr)' : 'vr = :old',
          ExpressionAttributeNames: { '#at': 'at' },
          ExpressionAttributeValues: { ':t': N(have - grant), ':now': N(Math.max(now, at)), ':next': N((version ?? 0) + 1), ...(version !== undefined ? { ':old': N(version) } : {}) },
        });
        return grant;
      } catch (err) {
        if (!isConditionFailed(err)) throw err; // another instance leased meanwhile: read again
      }
    }
    return 0;
  }
}
