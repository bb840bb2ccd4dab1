/**
 * Counter keys and time windows. One table holds everything (pk, sk):
 * - `c#<granularity>#<event>#<distinctId>` / window start: calls of one user
 * - `t#<granularity>#<event>` / window start: calls of all users
 * Components are percent-encoded so a `#` inside an event name or id cannot collide.
 */
import type { Granularity } from '../types';

export const WINDOW_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Start of the UTC window containing `ms`. */
export const windowStart = (ms: number, g: Granularity): number => ms - (((ms % WINDOW_MS[g]) + WINDOW_MS[g]) % WINDOW_MS[g]);

const enc = (s: string): string => (/[#%]/.test(s) ? s.replace(/%/g, '%25').replace(/#/g, '%23') : s);

/** Partition key of a counter: per user when `distinctId` is given, else across all users. */
export function counterPk(g: Granularity, event: string, distinctId?: string): string {
  return distinctId === undefined ? `t#${g}#${enc(event)}` : `c#${g}#${enc(event)}#${enc(distinctId)}`;
}

/** Sort key of a window: its ISO-8601 start (sorts as time). */
export const windowSk = (startMs: number): string => new Date(startMs).toISOString();
