/**
 * The table's key layout (one table, string keys `pk`/`sk`), in one place. Components that come from
 * clients (project, event, distinct id, dimension values) are percent-encoded for `%`, `#` and `|`,
 * so no value can collide with another or with a separator.
 *
 * | item | pk | sk |
 * |---|---|---|
 * | message claim | `m#<message id>` | `m` |
 * | batch marker (committed / aborted) | `B#<batch id>` | `b` |
 * | delta of a batch for one shard and roll-up window | `D#<shard>` | `<window ISO>#<batch id>#<part>` |
 * | roll-up state and lease of a shard | `R#<shard>` | `r` |
 * | outbox entry (PostHog events of a roll-up unit) | `O#<shard>` | `<window ISO>#<seq>#<part>` |
 * | PostHog event PostHog refused | `X#<shard>` | `<window ISO>#<seq>#<part>#<n>` |
 * | per user: minutes of an hour, hour total | `UH#<project>#<event>#<distinct id>` | `<hour ISO>[#<dims>]` |
 * | per user: days of a month, month total | `UM#<project>#<event>#<month ISO>#<bucket>` | `<distinct id>[#<dims>]` |
 * | all users: minutes of an hour, hour total | `TH#<project>#<event>` | `<hour ISO>[#<dims>]` |
 * | all users: days of a month, month total | `TM#<project>#<event>` | `<month ISO>[#<dims>]` |
| the events of a project: each one's month total | `EV#<project>` | `<month ISO>#<event>` |
 *
 * `UM` partitions list every user of an event in a month: the breakdown ("calls per customer in
 * November") is a Query per bucket, never a scan. Shards: `0`…`n-1` hold per-user rows (by a hash
 * of project, event and distinct id), `t` the totals across users.
 */
import { iso } from '../windows';

/** Percent-encodes the separators and `%` itself. */
export const enc = (s: string): string => (/[#%|]/.test(s) ? s.replace(/%/g, '%25').replace(/#/g, '%23').replace(/\|/g, '%7C') : s);
export const dec = (s: string): string => (s.includes('%') ? s.replace(/%7C/g, '|').replace(/%23/g, '#').replace(/%25/g, '%') : s);

/** Dimension values (in configured order) as one key component; `''` without dimensions. */
export const dimsKey = (values: readonly string[]): string => values.map(enc).join('|');
export const parseDimsKey = (key: string): string[] => key.split('|').map(dec);

/** The shard that rolls up the totals across users. */
export const TOTALS_SHARD = 't';
/** Buckets of the per-user month partitions (fixed: the breakdown reads every one). */
export const MONTH_BUCKETS = 16;

/** FNV-1a, 32 bits: spreads keys over shards and buckets (not a security boundary). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The per-user shard of (project, event, distinct id). */
export const userShard = (project: string, event: string, distinctId: string, shards: number): string =>
  String(fnv1a(`${project}\u0000${event}\u0000${distinctId}`) % shards);
export const monthBucket = (distinctId: string): number => fnv1a(distinctId) % MONTH_BUCKETS;

/** All shard ids for `shards` per-user shards, the totals shard last. */
export const allShards = (shards: number): string[] => [...Array.from({ length: shards }, (_, i) => String(i)), TOTALS_SHARD];

export const claimKey = (messageId: string) => ({ pk: `m#${messageId}`, sk: 'm' });
export const markerKey = (batchId: string) => ({ pk: `B#${batchId}`, sk: 'b' });
export const stateKey = (shard: string) => ({ pk: `R#${shard}`, sk: 'r' });
export const deltaPk = (shard: string): string => `D#${shard}`;
export const deltaSk = (windowStart: number, batchId: string, part: number): string => `${iso(windowStart)}#${batchId}#${part}`;
export const outboxPk = (shard: string): string => `O#${shard}`;
export const outboxSk = (windowStart: number, seq: number, part: number): string => `${iso(windowStart)}#${String(seq).padStart(10, '0')}#${part}`;
export const deadPk = (shard: string): string => `X#${shard}`;

/** `<window ISO>#<batch id>#<part>` → its parts. */
export function parseDeltaSk(sk: string): { window: string; batchId: string; part: number } {
  const a = sk.indexOf('#');
  const b = sk.lastIndexOf('#');
  return { window: sk.slice(0, a), batchId: sk.slice(a + 1, b), part: Number(sk.slice(b + 1)) };
}

const withDims = (base: string, dims: string | undefined): string => (dims === undefined ? base : `${base}#${dims}`);

/** Counter item keys. `dims` is {@link dimsKey}'s output, or `undefined` when no dimensions are configured. */
export const counterKeys = {
  userHour: (project: string, event: string, distinctId: string, hourStart: number, dims?: string) => ({
    pk: `UH#${enc(project)}#${enc(event)}#${enc(distinctId)}`,
    sk: withDims(iso(hourStart), dims),
  }),
  userMonth: (project: string, event: string, distinctId: string, monthStart: number, dims?: string) => ({
    pk: userMonthPk(project, event, monthStart, monthBucket(distinctId)),
    sk: withDims(enc(distinctId), dims),
  }),
  totalHour: (project: string, event: string, hourStart: number, dims?: string) => ({ pk: `TH#${enc(project)}#${enc(event)}`, sk: withDims(iso(hourStart), dims) }),
  totalMonth: (project: string, event: string, monthStart: number, dims?: string) => ({ pk: `TM#${enc(project)}#${enc(event)}`, sk: withDims(iso(monthStart), dims) }),
};

/** The events of a project by month: one item per (month, event), its total across users and dimensions. */
export const eventsPk = (project: string): string => `EV#${enc(project)}`;
export const eventSk = (monthStart: number, event: string): string => `${iso(monthStart)}#${enc(event)}`;

export const userHourPk = (project: string, event: string, distinctId: string): string => `UH#${enc(project)}#${enc(event)}#${enc(distinctId)}`;
export const userMonthPk = (project: string, event: string, monthStart: number, bucket: number): string => `UM#${enc(project)}#${enc(event)}#${iso(monthStart)}#${bucket}`;
export const totalHourPk = (project: string, event: string): string => `TH#${enc(project)}#${enc(event)}`;
export const totalMonthPk = (project: string, event: string): string => `TM#${enc(project)}#${enc(event)}`;

/** A counter item's sort key → the window or subject part and the dimensions part (`undefined`: none). */
export function splitCounterSk(sk: string): { head: string; dims?: string } {
  const i = sk.indexOf('#');
  return i < 0 ? { head: sk } : { head: sk.slice(0, i), dims: sk.slice(i + 1) };
}

/** Attribute names of the minute slots of an hour item and the day slots of a month item. */
export const minuteAttr = (minuteOfHour: number): string => `m${minuteOfHour}`;
export const dayAttr = (dayOfMonth: number): string => `d${dayOfMonth}`;
/** The roll-up guard of a shard on a counter item: the sequence number of the last unit applied. */
export const guardAttr = (shard: string): string => `g${shard}`;
