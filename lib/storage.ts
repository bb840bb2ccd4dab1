/**
 * Storage: the one DynamoDB table holding counters, claims, deltas, roll-up state and the PostHog outbox.
 * Key `pk`/`sk` (strings), no secondary index, TTL on `ttl` (minute windows and dedupe markers expire;
 * hour and day windows carry no `ttl` and are kept).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import type { TallyConfig } from './config';

/**
 * What each function does with the table, and nothing more (never a wildcard): the aggregator claims,
 * writes deltas and its batch marker (PutItem), reads claims and markers (GetItem, BatchGetItem) and
 * takes stale claims over (UpdateItem).
 */
export const AGGREGATOR_TABLE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem'];
/** The roll-up also reads and deletes deltas and outbox entries (Query, DeleteItem) and updates counters. */
export const ROLLUP_TABLE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:DeleteItem'];
/**
 * The query function reads counters, deltas, markers and shard states; it and ingest read keys and projects
 * (src/projects/store.ts) with the same actions.
 */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];

/**
 * Writes ingest and query make to projects and keys, each limited to the items it touches by the
 * partition key (`dynamodb:LeadingKeys`, src/projects/store.ts's layout): the import of the configured keys
 * at cold start puts the `default` project and their key items (PutItem on `PROJECTS`, `KEY#…`, `KEYS#…`);
 * a key's last use is recorded on its listing (UpdateItem on `KEYS#…`); ingest also leases rate-limit
 * tokens (UpdateItem on `RL#…`). Nothing else in the table can be written by them.
 */
export const KEY_IMPORT_ACTIONS = ['dynamodb:PutItem'];
export const KEY_IMPORT_LEADING_KEYS = ['PROJECTS', 'KEY#*', 'KEYS#*'];
export const KEY_TOUCH_ACTIONS = ['dynamodb:UpdateItem'];
export const KEY_TOUCH_LEADING_KEYS = ['KEYS#*'];
export const INGEST_UPDATE_LEADING_KEYS = ['KEYS#*', 'RL#*'];

/** The IAM condition that limits a statement to items whose partition key matches `patterns`. */
export const leadingKeys = (patterns: readonly string[]): Record<string, Record<string, unknown>> => ({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...patterns] } });

export interface StorageProps {
  readonly config: TallyConfig;
}

export class Storage extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const retain = props.config.removalPolicy === 'retain';
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      // On-demand: traffic is bursty and unknown in advance; no capacity to manage or throttle on.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // Restore to any second of the last 35 days after a bad deploy or an operator mistake.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'ttl',
      // Encrypted at rest with the AWS owned key: no KMS charges, nothing to manage.
      encryption: dynamodb.TableEncryption.DEFAULT,
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      // A retained table is also protected against deletion by a replacement or by hand.
      deletionProtection: retain,
    });
  }
}
