/**
 * {@link UsageStore} on DynamoDB: one table, keys `pk`/`sk` (layout in keys.ts), written against the
 * low-level {@link DynamoApi} with hand-built attribute values (no marshalling library on the hot path).
 *
 * Every write is conditional or idempotent:
 * - claims and batch markers are conditional puts (`attribute_not_exists`); a put whose answer was
 *   lost and that fails its condition on retry is told apart by reading the item back;
 * - deltas and outbox entries are plain puts of content fixed by their key;
 * - counter updates `ADD` only while the shard's guard attribute is below the roll-up unit's sequence
 *   number, so re-applying a unit adds nothing; the guard is one number per shard, never a set.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mapLimit } from '../util/concurrency';
import type { DynamoApi } from './dynamo-api';
import { claimKey, deadPk, deltaPk, markerKey, outboxPk, parseDeltaSk, stateKey } from './keys';
import type {
  ClaimOutcome,
  CounterItem,
  CounterUpdate,
  DeltaItem,
  DeltaWrite,
  MarkerState,
  OutboxEntry,
  ShardState,
  UsageStore,
} from './types';

export interface DynamoStoreOptions {
  tableName: string;
  /** Parallel requests for claims, counter updates and deletes. */
  concurrency: number;
  /** Days message claims, batch markers and deltas are kept (TTL): longer than a message can live in the queues. */
  dedupeTtlDays: number;
  /** Days outbox entries are kept while PostHog refuses them. */
  outboxTtlDays: number;
}

export const dynamoStoreDefaults = { concurrency: 32, dedupeTtlDays: 15, outboxTtlDays: 15 } as const;

const DAY_S = 86_400;
/** Both the SDK's exception and the JSON client's error carry DynamoDB's error type as `name`. */
const isConditionFailed = (err: unknown): boolean => (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const key = (k: { pk: string; sk: string }): Record<string, AttributeValue> => ({ pk: S(k.pk), sk: S(k.sk) });
const MARKER: Record<string, MarkerState> = { c: 'committed', a: 'aborted' };
const MARKER_CODE: Record<MarkerState, string> = { committed: 'c', aborted: 'a' };

function counterItem(i: Record<string, AttributeValue>): CounterItem {
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(i)) if (v.N !== undefined) values[k] = Number(v.N);
  return { pk: i.pk!.S!, sk: i.sk!.S!, values };
}

function shardState(shard: string, i: Record<string, AttributeValue> | undefined): ShardState {
  return {
    shard,
    seq: Number(i?.seq?.N ?? 0),
    phase: (i?.ph?.S as ShardState['phase'] | undefined) ?? 'idle',
    window: i?.w?.N !== undefined ? Number(i.w.N) : undefined,
    lastSk: i?.ls?.S,
    part: Number(i?.wp?.N ?? 0),
    owner: i?.lo?.S,
    leaseUntil: Number(i?.le?.N ?? 0),
    retryAt: Number(i?.ra?.N ?? 0),
    failures: Number(i?.rf?.N ?? 0),
  };
}

/** State fields → attribute names. */
const STATE_ATTRS: Record<string, [name: string, type: 'N' | 'S']> = {
  seq: ['seq', 'N'],
  phase: ['ph', 'S'],
  window: ['w', 'N'],
  lastSk: ['ls', 'S'],
  part: ['wp', 'N'],
  leaseUntil: ['le', 'N'],
  retryAt: ['ra', 'N'],
  failures: ['rf', 'N'],
};

export class DynamoUsageStore implements UsageStore {
  readonly o: DynamoStoreOptions;

  constructor(
    readonly db: DynamoApi,
    opts: Partial<DynamoStoreOptions> & { tableName: string },
  ) {
    this.o = { ...dynamoStoreDefaults, ...opts };
  }

  private ttl(now: number, days: number): AttributeValue {
    return N(Math.floor(now / 1000) + days * DAY_S);
  }

  // ── claims and markers ────────────────────────────────────────────────────────────────────────

  async claim(messageId: string, batchId: string, now: number): Promise<ClaimOutcome> {
    for (;;) {
      try {
        await this.db.putItem({
          TableName: this.o.tableName,
          Item: { ...key(claimKey(messageId)), o: S(batchId), at: N(now), ttl: this.ttl(now, this.o.dedupeTtlDays) },
          ConditionExpression: 'attribute_not_exists(pk)',
        });
        return { kind: 'claimed' };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      const got = await this.db.getItem({ TableName: this.o.tableName, Key: key(claimKey(messageId)), ConsistentRead: true });
      if (!got.Item) continue; // expired between the two calls
      const owner = got.Item.o!.S!;
      // Our own put, applied but its answer lost, then retried: the claim is ours.
      if (owner === batchId) return { kind: 'claimed' };
      return { kind: 'taken', owner, at: Number(got.Item.at!.N) };
    }
  }

  async steal(messageId: string, fromBatch: string, toBatch: string, now: number): Promise<boolean> {
    try {
      await this.db.updateItem({
        TableName: this.o.tableName,
        Key: key(claimKey(messageId)),
        UpdateExpression: 'SET o = :to, #at = :now',
        ConditionExpression: 'o = :from',
        ExpressionAttributeNames: { '#at': 'at' },
        ExpressionAttributeValues: { ':to': S(toBatch), ':from': S(fromBatch), ':now': N(now) },
      });
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
    // Failed its condition: moved by someone else, or by this very update whose answer was lost.
    const got = await this.db.getItem({ TableName: this.o.tableName, Key: key(claimKey(messageId)), ConsistentRead: true });
    return got.Item?.o?.S === toBatch;
  }

  async markers(batchIds: readonly string[]): Promise<Map<string, MarkerState>> {
    const out = new Map<string, MarkerState>();
    const ids = [...new Set(batchIds)];
    const groups: string[][] = [];
    for (let i = 0; i < ids.length; i += 100) groups.push(ids.slice(i, i + 100));
    await mapLimit(groups, 4, async (g) => {
      let keys: Record<string, AttributeValue>[] | undefined = g.map((id) => key(markerKey(id)));
      for (let round = 0; keys && keys.length > 0; round++) {
        const r = await this.db.batchGetItem({ RequestItems: { [this.o.tableName]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'pk, st' } } });
        for (const i of r.Responses?.[this.o.tableName] ?? []) {
          const st = MARKER[i.st?.S ?? ''];
          if (st) out.set(i.pk!.S!.slice(2), st);
        }
        keys = r.UnprocessedKeys?.[this.o.tableName]?.Keys as Record<string, AttributeValue>[] | undefined;
        if (keys?.length) await new Promise((res) => setTimeout(res, Math.min(1000, 20 * 2 ** round)));
      }
    });
    return out;
  }

  async decide(batchId: string, state: MarkerState, now: number): Promise<MarkerState> {
    try {
      await this.db.putItem({
        TableName: this.o.tableName,
        Item: { ...key(markerKey(batchId)), st: S(MARKER_CODE[state]), at: N(now), ttl: this.ttl(now, this.o.dedupeTtlDays) },
        ConditionExpression: 'attribute_not_exists(pk)',
      });
      return state;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
    const got = await this.db.getItem({ TableName: this.o.tableName, Key: key(markerKey(batchId)), ConsistentRead: true });
    const st = MARKER[got.Item?.st?.S ?? ''];
    if (!st) throw new Error(`batch marker ${batchId} exists without a state`);
    return st;
  }

  // ── deltas ────────────────────────────────────────────────────────────────────────────────────

  async putDelta(d: DeltaWrite, now: number): Promise<void> {
    const { pk, sk } = { pk: deltaPk(d.shard), sk: `${new Date(d.window).toISOString()}#${d.batchId}#${d.part}` };
    await this.db.putItem({
      TableName: this.o.tableName,
      Item: { pk: S(pk), sk: S(sk), d: { B: d.data }, n: N(d.calls), ttl: this.ttl(now, this.o.dedupeTtlDays) },
    });
  }

  async firstDelta(shard: string): Promise<{ sk: string; window: string } | undefined> {
    const r = await this.db.query({
      TableName: this.o.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S(deltaPk(shard)) },
      ProjectionExpression: 'sk',
      Limit: 1,
      ConsistentRead: true,
    });
    const sk = r.Items?.[0]?.sk?.S;
    return sk === undefined ? undefined : { sk, window: parseDeltaSk(sk).window };
  }

  private async deltas(shard: string, cond: { from?: string; to?: string }, maxBytes = Infinity): Promise<DeltaItem[]> {
    const out: DeltaItem[] = [];
    let bytes = 0;
    let start: Record<string, AttributeValue> | undefined;
    const values: Record<string, AttributeValue> = { ':pk': S(deltaPk(shard)) };
    let expr = 'pk = :pk';
    if (cond.from !== undefined && cond.to !== undefined) {
      expr += ' AND sk BETWEEN :from AND :to';
      values[':from'] = S(cond.from);
      values[':to'] = S(cond.to);
    }
    do {
      const r = await this.db.query({ TableName: this.o.tableName, KeyConditionExpression: expr, ExpressionAttributeValues: values, ExclusiveStartKey: start, ConsistentRead: true });
      for (const i of r.Items ?? []) {
        const sk = i.sk!.S!;
        const p = parseDeltaSk(sk);
        const data = i.d!.B as Uint8Array;
        out.push({ sk, window: p.window, batchId: p.batchId, part: p.part, data });
        bytes += data.length;
        // Always whole batches' parts together would be nicer, but any cut is correct: parts are disjoint.
        if (bytes >= maxBytes) return out;
      }
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  listDeltas(shard: string, window: string, o: { lastSk?: string; maxBytes?: number } = {}): Promise<DeltaItem[]> {
    return this.deltas(shard, { from: `${window}#`, to: o.lastSk ?? `${window}#\uffff` }, o.maxBytes);
  }

  allDeltas(shard: string): Promise<DeltaItem[]> {
    return this.deltas(shard, {});
  }

  async deleteDeltas(shard: string, sks: readonly string[]): Promise<void> {
    await mapLimit(sks, this.o.concurrency, (sk) => this.db.deleteItem({ TableName: this.o.tableName, Key: { pk: S(deltaPk(shard)), sk: S(sk) } }));
  }

  // ── roll-up state and lease ───────────────────────────────────────────────────────────────────

  async getState(shard: string): Promise<ShardState> {
    const got = await this.db.getItem({ TableName: this.o.tableName, Key: key(stateKey(shard)), ConsistentRead: true });
    return shardState(shard, got.Item);
  }

  async acquire(shard: string, owner: string, now: number, leaseMs: number): Promise<ShardState | undefined> {
    try {
      const r = await this.db.updateItem({
        TableName: this.o.tableName,
        Key: key(stateKey(shard)),
        UpdateExpression: 'SET lo = :me, le = :until',
        ConditionExpression: 'attribute_not_exists(le) OR le < :now OR lo = :me',
        ExpressionAttributeValues: { ':me': S(owner), ':until': N(now + leaseMs), ':now': N(now) },
        ReturnValues: 'ALL_NEW',
      });
      return shardState(shard, r.Attributes);
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async transition(shard: string, owner: string, from: Pick<ShardState, 'seq' | 'phase'>, to: Partial<Omit<ShardState, 'shard' | 'owner'>>): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = { ':me': S(owner), ':seq0': N(from.seq), ':ph0': S(from.phase) };
    const sets: string[] = [];
    const removes: string[] = [];
    for (const [field, v] of Object.entries(to)) {
      const [name, type] = STATE_ATTRS[field]!;
      names[`#${name}`] = name;
      if (v === undefined) removes.push(`#${name}`);
      else {
        sets.push(`#${name} = :${name}`);
        values[`:${name}`] = type === 'N' ? N(v as number) : S(v as string);
      }
    }
    names['#seq0'] = 'seq';
    names['#ph0'] = 'ph';
    const update = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
    // A state never written has no `seq`/`ph`: it is seq 0, idle.
    const seqCond = from.seq === 0 ? '(attribute_not_exists(#seq0) OR #seq0 = :seq0)' : '#seq0 = :seq0';
    const phCond = from.phase === 'idle' ? '(attribute_not_exists(#ph0) OR #ph0 = :ph0)' : '#ph0 = :ph0';
    try {
      await this.db.updateItem({
        TableName: this.o.tableName,
        Key: key(stateKey(shard)),
        UpdateExpression: update,
        ConditionExpression: `lo = :me AND ${seqCond} AND ${phCond}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
    // Lost answer of this very update? Then the state already reads as `to`, and we still hold the lease.
    const s = await this.getState(shard);
    return s.owner === owner && Object.entries(to).every(([f, v]) => (s as unknown as Record<string, unknown>)[f] === v);
  }

  async release(shard: string, owner: string): Promise<void> {
    try {
      await this.db.updateItem({
        TableName: this.o.tableName,
        Key: key(stateKey(shard)),
        UpdateExpression: 'SET le = :zero',
        ConditionExpression: 'lo = :me',
        ExpressionAttributeValues: { ':me': S(owner), ':zero': N(0) },
      });
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  // ── counters ──────────────────────────────────────────────────────────────────────────────────

  async applyCounter(u: CounterUpdate): Promise<boolean> {
    const names: Record<string, string> = { '#g': u.guard };
    const values: Record<string, AttributeValue> = { ':seq': N(u.seq) };
    const adds: string[] = [];
    let i = 0;
    for (const [attr, n] of Object.entries(u.add)) {
      names[`#a${i}`] = attr;
      values[`:a${i}`] = N(n);
      adds.push(`#a${i} :a${i}`);
      i++;
    }
    let set = '#g = :seq';
    if (u.ttl !== undefined) {
      names['#ttl'] = 'ttl';
      values[':ttl'] = N(u.ttl);
      set += ', #ttl = if_not_exists(#ttl, :ttl)';
    }
    try {
      await this.db.updateItem({
        TableName: this.o.tableName,
        Key: { pk: S(u.pk), sk: S(u.sk) },
        UpdateExpression: `ADD ${adds.join(', ')} SET ${set}`,
        ConditionExpression: 'attribute_not_exists(#g) OR #g < :seq',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false; // this unit was applied here already
      throw err;
    }
  }

  // ── outbox ────────────────────────────────────────────────────────────────────────────────────

  async putOutbox(e: OutboxEntry, now: number): Promise<void> {
    await this.db.putItem({
      TableName: this.o.tableName,
      Item: { pk: S(outboxPk(e.shard)), sk: S(e.sk), d: { B: e.data }, n: N(e.count), ttl: this.ttl(now, this.o.outboxTtlDays) },
    });
  }

  async listOutbox(shard: string, limit: number): Promise<OutboxEntry[]> {
    const r = await this.db.query({
      TableName: this.o.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S(outboxPk(shard)) },
      Limit: limit,
      ConsistentRead: true,
    });
    return (r.Items ?? []).map((i) => ({ shard, sk: i.sk!.S!, data: i.d!.B as Uint8Array, count: Number(i.n?.N ?? 0) }));
  }

  async deleteOutbox(shard: string, sk: string): Promise<void> {
    await this.db.deleteItem({ TableName: this.o.tableName, Key: { pk: S(outboxPk(shard)), sk: S(sk) } });
  }

  async putRejected(shard: string, sk: string, event: unknown, reason: string, now: number): Promise<void> {
    await this.db.putItem({
      TableName: this.o.tableName,
      Item: { pk: S(deadPk(shard)), sk: S(sk), d: { B: gzipSync(JSON.stringify(event)) }, why: S(reason.slice(0, 1000)), at: N(now), ttl: this.ttl(now, this.o.outboxTtlDays) },
    });
  }

  async listRejected(shard: string, limit: number): Promise<Array<{ sk: string; event: unknown; reason: string }>> {
    const r = await this.db.query({ TableName: this.o.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S(deadPk(shard)) }, Limit: limit });
    return (r.Items ?? []).map((i) => ({ sk: i.sk!.S!, event: JSON.parse(gunzipSync(i.d!.B as Uint8Array).toString('utf8')), reason: i.why?.S ?? '' }));
  }

  // ── reads for queries ─────────────────────────────────────────────────────────────────────────

  private async queryItems(input: { expr: string; values: Record<string, AttributeValue> }): Promise<CounterItem[]> {
    const out: CounterItem[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.query({ TableName: this.o.tableName, KeyConditionExpression: input.expr, ExpressionAttributeValues: input.values, ExclusiveStartKey: start, ConsistentRead: true });
      for (const i of r.Items ?? []) out.push(counterItem(i));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  queryRange(pk: string, fromSk: string, toSk: string): Promise<CounterItem[]> {
    return this.queryItems({ expr: 'pk = :pk AND sk BETWEEN :a AND :b', values: { ':pk': S(pk), ':a': S(fromSk), ':b': S(toSk) } });
  }

  queryExactOrPrefixed(pk: string, sk: string): Promise<CounterItem[]> {
    // `sk` itself, then `sk#…`: '#' (0x23) < '$', so the range [sk, sk#\uffff] holds both and nothing else but keys starting with sk + a char below '#'.
    return this.queryRange(pk, sk, `${sk}#\uffff`).then((items) => items.filter((i) => i.sk === sk || i.sk.startsWith(`${sk}#`)));
  }

  queryAll(pk: string): Promise<CounterItem[]> {
    return this.queryItems({ expr: 'pk = :pk', values: { ':pk': S(pk) } });
  }
}
