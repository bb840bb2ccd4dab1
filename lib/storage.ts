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
/** The query function reads counters, deltas, markers and shard states. */
export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];

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
