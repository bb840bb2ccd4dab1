/**
 * Greedy, order-keeping grouping: a new group starts when the current one holds `maxCount` items or
 * the next item would take it over `maxSize`. An item larger than `maxSize` gets a group of its own.
 * Shared by the SQS call packing (≤ 10 entries, ≤ 1 MiB) and the aggregator's ledger groups.
 */
export function chunkBySize<T>(items: readonly T[], sizeOf: (item: T) => number, maxSize: number, maxCount = Infinity): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let size = 0;
  for (const item of items) {
    const s = sizeOf(item);
    if (cur.length === maxCount || (cur.length > 0 && size + s > maxSize)) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(item);
    size += s;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}
