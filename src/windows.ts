/**
 * Time windows, all in UTC: the query granularities (minute, hour, day and calendar month) and the
 * aggregation window (`TALLY_WINDOW_SECONDS`) that batch events and roll-ups are cut by.
 */
import type { Granularity } from './types';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Length of a fixed-length granularity; a month has none (see {@link windowEnd}). */
export const FIXED_MS: Record<Exclude<Granularity, 'month'>, number> = { minute: MINUTE, hour: HOUR, day: DAY };

const floorTo = (ms: number, len: number): number => ms - (((ms % len) + len) % len);

/** Start of the UTC window of granularity `g` that contains `ms`. */
export function windowStart(ms: number, g: Granularity): number {
  if (g !== 'month') return floorTo(ms, FIXED_MS[g]);
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** End (exclusive) of the window that starts at `start`. */
export function windowEnd(start: number, g: Granularity): number {
  if (g !== 'month') return start + FIXED_MS[g];
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Window starts of granularity `g` from the one containing `from` to the one containing `to`, inclusive. */
export function windowsBetween(from: number, to: number, g: Granularity, max = Infinity): number[] {
  const out: number[] = [];
  for (let s = windowStart(from, g); s <= to && out.length < max; s = windowEnd(s, g)) out.push(s);
  return out;
}

/** Number of windows of `g` from the one containing `from` to the one containing `to`, inclusive. */
export function windowCount(from: number, to: number, g: Granularity): number {
  const a = windowStart(from, g);
  const b = windowStart(to, g);
  if (g !== 'month') return Math.floor((b - a) / FIXED_MS[g]) + 1;
  const da = new Date(a);
  const db = new Date(b);
  return (db.getUTCFullYear() - da.getUTCFullYear()) * 12 + db.getUTCMonth() - da.getUTCMonth() + 1;
}

/** ISO-8601 of an instant: the sort keys of windows (sorts as time for years 0000–9999). */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** The earliest and latest instants tally stores (years 2000–9999): keys stay ISO-sortable. */
export const MIN_TIME = Date.UTC(2000, 0, 1);
export const MAX_TIME = Date.UTC(9999, 11, 31);

/**
 * The aggregation window: batch events cover one window each, and the roll-up merges a closed
 * window's deltas into the counters once. Lengths divide an hour and either divide a minute or are
 * whole minutes (10, 15, 20, 30, 60, 120, …, 300, …, 3600 s), so windows never straddle an hour.
 */
export interface AggregationWindow {
  /** Window length, ms. */
  lengthMs: number;
  /** Resolution rows are kept at: the window when shorter than a minute, else a minute. */
  slotMs: number;
  /** Time after a window ends before its roll-up: covers batches still in flight. */
  graceMs: number;
}

/** Whether `seconds` is an allowed aggregation window length. */
export const isWindowLength = (seconds: number): boolean =>
  Number.isInteger(seconds) && seconds >= 10 && seconds <= 3600 && 3600 % seconds === 0 && (60 % seconds === 0 || seconds % 60 === 0);

export function aggregationWindow(windowSeconds: number, graceSeconds: number): AggregationWindow {
  if (!isWindowLength(windowSeconds)) throw new RangeError(`window of ${windowSeconds} s: must divide 3600 and be 10–60 s dividing a minute or whole minutes`);
  const lengthMs = windowSeconds * 1000;
  return { lengthMs, slotMs: Math.min(lengthMs, MINUTE), graceMs: graceSeconds * 1000 };
}
