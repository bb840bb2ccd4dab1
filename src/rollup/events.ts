/**
 * Pure: the PostHog events of a roll-up unit of window `W`: one `<event>_batch` per (project, event,
 * dimensions, distinct id) with the calls that were on time for `W`, one correction per earlier
 * window with the calls that arrived after that window's event was sent (`late: true`), and the
 * forwarded `$` events unchanged. Uuids derive from what the event stands for, so a resend is the
 * same event and PostHog keeps it once.
 */
import type { Forward, Row } from '../aggregate/rows';
import { parseDimsKey } from '../store/keys';
import type { PostHogEvent } from '../types';
import { deterministicUuid } from '../util/ids';
import { iso, type AggregationWindow } from '../windows';

/** A PostHog event and the project whose destination it goes to. */
export interface ProjectEvent {
  project: string;
  event: PostHogEvent;
}

export interface UnitId {
  shard: string;
  seq: number;
  /** Roll-up window start, epoch ms. */
  window: number;
  /** Index of this unit among its window's units (0 almost always). */
  part: number;
}

const floorTo = (ms: number, len: number): number => ms - (((ms % len) + len) % len);

export function unitEvents(rows: readonly Row[], forward: readonly Forward[], unit: UnitId, w: AggregationWindow, dimensions: readonly string[]): ProjectEvent[] {
  const byKey = new Map<string, { r: Row; start: number; calls: number }>();
  for (const r of rows) {
    const start = floorTo(r.slot, w.lengthMs);
    const k = `${r.project.length}:${r.event.length}:${r.dims === undefined ? -1 : r.dims.length}:${r.distinctId.length}:${start}|${r.project}${r.event}${r.dims ?? ''}${r.distinctId}`;
    const g = byKey.get(k);
    if (g) g.calls += r.calls;
    else byKey.set(k, { r, start, calls: r.calls });
  }
  const out: ProjectEvent[] = [];
  for (const { r, start, calls } of byKey.values()) {
    const late = start < unit.window;
    const who = [r.project, r.event, r.dims ?? '', r.distinctId, String(start), String(w.lengthMs)];
    const uuid = late
      ? deterministicUuid('tally-late', ...who, unit.shard, String(unit.seq))
      : unit.part === 0
        ? deterministicUuid('tally-window', ...who)
        : deterministicUuid('tally-window', ...who, `part-${unit.part}`);
    const properties: Record<string, unknown> = {
      calls,
      distinctId: r.distinctId,
      window_start: iso(start),
      window_end: iso(start + w.lengthMs),
      // Batch events come from tally, not from the user's device: no GeoIP from tally's address.
      $geoip_disable: true,
    };
    if (r.dims !== undefined) {
      const values = parseDimsKey(r.dims);
      dimensions.forEach((name, i) => {
        if (values[i] !== undefined && values[i] !== '') properties[name] = values[i];
      });
    }
    if (late) properties.late = true;
    out.push({ project: r.project, event: { uuid, event: `${r.event}_batch`, distinctId: r.distinctId, timestamp: iso(start), properties } });
  }
  for (const f of forward) out.push({ project: f.project, event: f.event });
  return out;
}
