/**
 * {@link UsageStore} on DynamoDB (one table, keys `pk`/`sk`). Counters use `ADD` guarded by a set of
 * in-flight batch ids (`ap`), so re-applying a batch after a crash adds nothing; the set is emptied
 * once the batch's ledger is `applied`, so it stays as small as the number of concurrent batches.
 * Written against the low-level client with hand-built attribute values: no marshalling library on
 * the hot path.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mapLimit } from '../util/concurrency';
import type { DynamoApi } from './dynamo-api';
import type { ClaimOutcome, CounterDelta, Ledger, LedgerState, OutboxEntry, SeriesPoint, UsageStore } from './types';

export interface DynamoStoreOptions {
  tableName: string;
  /** Parallel requests for counter updates and claims. */
  concurrency: number;
  /** TTL of minute windows, days (hour and day windows are kept). */
  minuteTtlDays: number;
  /** TTL of message claims and ledgers, days: longer than the queue's retention. */
  dedupeTtlDays: number;
  /** Outbox partitions, to spread ledger writes. */
  outboxShards: number;
}

export const dynamoStoreDefaults = { concurrency: 32, minuteTtlDays: 14, dedupeTtlDays: 15, outboxShards: 8 } as const;

const DAY_S = 86_400;
/** Both the SDK's exception and dynamo-fast.ts's error carry DynamoDB's error type as `name`. */
const isConditionFailed = (err: unknown): boolean => (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/** Shard of a batch id in the outbox (stable). */
function shardOf(batchId: string, shards: number): number {
  let h = 0;
  for (let i = 0; i < batchId.length; i++) h = (h * 31 + batchId.charCodeAt(i)) | 0;
  return Math.abs(h) % shards;
}

export class DynamoUsageStore implements UsageStore {
  private readonly o: DynamoStoreOptions;

  constructor(
    private readonly db: DynamoApi,
    opts: Partial<DynamoStoreOptions> & { tableName: string },
  ) {
    this.o = { ...dynamoStoreDefaults, ...opts };
  }

  private ttl(now: number, days: number): AttributeValue {
    return { N: String(Math.floor(now / 1000) + days * DAY_S) };
  }

  async claim(messageId: string, batchId: string, now: number): Promise<ClaimOutcome> {
    try {
      await this.db.putItem({
          TableName: this.o.tableName,
          Item: { pk: { S: `m#${messageId}` }, sk: { S: 'm' }, o: { S: batchId }, at: { N: String(now) }, ttl: this.ttl(now, this.o.dedupeTtlDays) },
          ConditionExpression: 'attribute_not_exists(pk)',
        });
      return { kind: 'claimed' };
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
    const got = await this.db.getItem({ TableName: this.o.tableName, Key: { pk: { S: `m#${messageId}` }, sk: { S: 'm' } }, ConsistentRead: true });
    if (!got.Item) return this.claim(messageId, batchId, now); // expired between the two calls
    return { kind: 'taken', owner: got.Item.o!.S!, at: Number(got.Item.at!.N) };
  }

  async steal(messageId: string, fromBatch: string, toBatch: string, now: number): Promise<boolean> {
    try {
      await this.db.updateItem({
          TableName: this.o.tableName,
          Key: { pk: { S: `m#${messageId}` }, sk: { S: 'm' } },
          UpdateExpression: 'SET o = :to, #at = :now',
          ConditionExpression: 'o = :from',
          ExpressionAttributeNames: { '#at': 'at' },
          ExpressionAttributeValues: { ':to': { S: toBatch }, ':from': { S: fromBatch }, ':now': { N: String(now) } },
        });
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async putLedger(ledger: Ledger): Promise<void> {
    const data = gzipSync(JSON.stringify({ rows: ledger.rows, forward: ledger.forward }));
    const calls = ledger.rows.reduce((s, r) => s + r.calls, 0);
    // Outbox entry first: a ledger without one could be stranded; an entry without a ledger is skipped.
    await this.db.putItem({
        TableName: this.o.tableName,
        Item: {
          pk: { S: `o#${shardOf(ledger.batchId, this.o.outboxShards)}` },
          sk: { S: ledger.batchId },
          at: { N: String(ledger.at) },
          ttl: this.ttl(ledger.at, this.o.dedupeTtlDays),
        },
      });
    await this.db.putItem({
        TableName: this.o.tableName,
        Item: {
          pk: { S: `b#${ledger.batchId}` },
          sk: { S: 'b' },
          st: { S: ledger.state },
          at: { N: String(ledger.at) },
          n: { N: String(calls) },
          d: { B: data },
          ttl: this.ttl(ledger.at, this.o.dedupeTtlDays),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      });
  }

  async getLedger(batchId: string): Promise<Ledger | undefined> {
    const got = await this.db.getItem({ TableName: this.o.tableName, Key: { pk: { S: `b#${batchId}` }, sk: { S: 'b' } }, ConsistentRead: true });
    if (!got.Item) return undefined;
    const data = JSON.parse(gunzipSync(got.Item.d!.B!).toString('utf8')) as Pick<Ledger, 'rows' | 'forward'>;
    return {
      batchId,
      state: got.Item.st!.S as LedgerState,
      at: Number(got.Item.at!.N),
      rows: data.rows,
      forward: data.forward,
      appliedAt: got.Item.aa ? Number(got.Item.aa.N) : undefined,
      released: got.Item.rel?.BOOL === true,
    };
  }

  async setLedgerState(batchId: string, state: Exclude<LedgerState, 'pending'>, now: number): Promise<void> {
    await this.db.updateItem({
        TableName: this.o.tableName,
        Key: { pk: { S: `b#${batchId}` }, sk: { S: 'b' } },
        UpdateExpression: state === 'applied' ? 'SET st = :st, aa = if_not_exists(aa, :now)' : 'SET st = :st',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: state === 'applied' ? { ':st': { S: state }, ':now': { N: String(now) } } : { ':st': { S: state } },
      });
  }

  async markReleased(batchId: string): Promise<void> {
    await this.db.updateItem({
        TableName: this.o.tableName,
        Key: { pk: { S: `b#${batchId}` }, sk: { S: 'b' } },
        UpdateExpression: 'SET rel = :t',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':t': { BOOL: true } },
      });
  }

  async deleteOutboxEntry(batchId: string): Promise<void> {
    await this.db.deleteItem({
        TableName: this.o.tableName,
        Key: { pk: { S: `o#${shardOf(batchId, this.o.outboxShards)}` }, sk: { S: batchId } },
      });
  }

  async applyCounters(batchId: string, deltas: CounterDelta[]): Promise<number> {
    const now = Date.now();
    const minuteTtl = this.ttl(now, this.o.minuteTtlDays);
    const written = await mapLimit(deltas, this.o.concurrency, async (d) => {
      const minute = d.granularity === 'minute';
      try {
        await this.db.updateItem({
            TableName: this.o.tableName,
            Key: { pk: { S: d.pk }, sk: { S: d.sk } },
            UpdateExpression: minute ? 'ADD calls :n, ap :b SET #ttl = if_not_exists(#ttl, :ttl)' : 'ADD calls :n, ap :b',
            ConditionExpression: 'NOT contains(ap, :id)',
            ExpressionAttributeNames: minute ? { '#ttl': 'ttl' } : undefined,
            ExpressionAttributeValues: minute
              ? { ':n': { N: String(d.calls) }, ':b': { SS: [batchId] }, ':id': { S: batchId }, ':ttl': minuteTtl }
              : { ':n': { N: String(d.calls) }, ':b': { SS: [batchId] }, ':id': { S: batchId } },
          });
        return 1;
      } catch (err) {
        if (isConditionFailed(err)) return 0; // this batch was already added here
        throw err;
      }
    });
    return written.reduce((a: number, b) => a + b, 0);
  }

  async releaseCounters(batchId: string, deltas: CounterDelta[]): Promise<void> {
    await mapLimit(deltas, this.o.concurrency, (d) =>
      this.db.updateItem({
          TableName: this.o.tableName,
          Key: { pk: { S: d.pk }, sk: { S: d.sk } },
          UpdateExpression: 'DELETE ap :b',
          ExpressionAttributeValues: { ':b': { SS: [batchId] } },
        }),
    );
  }

  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    const shards = Array.from({ length: this.o.outboxShards }, (_, i) => i);
    const perShard = await mapLimit(shards, this.o.outboxShards, async (s) => {
      const r = await this.db.query({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': { S: `o#${s}` } },
          Limit: limit,
        });
      return (r.Items ?? []).map((i) => ({ batchId: i.sk!.S!, at: Number(i.at!.N) }));
    });
    return perShard
      .flat()
      .sort((a, b) => a.at - b.at)
      .slice(0, limit);
  }

  async readSeries(pk: string, fromSk: string, toSk: string): Promise<SeriesPoint[]> {
    const out: SeriesPoint[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.query({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': { S: pk }, ':from': { S: fromSk }, ':to': { S: toSk } },
          ProjectionExpression: 'sk, calls',
          ExclusiveStartKey: start,
        });
      for (const i of r.Items ?? []) {
        const calls = Number(i.calls?.N ?? 0);
        if (calls > 0) out.push({ start: i.sk!.S!, calls });
      }
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }
}
