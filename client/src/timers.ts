/** Timers that do not keep a process alive (internal: no public type mentions them). */
export type Timer = ReturnType<typeof setTimeout>;

/** `setTimeout`, unref'd where the runtime can (Node, Deno, Bun). */
export function unrefTimer(fn: () => void, ms: number): Timer {
  const t = setTimeout(fn, ms);
  (t as unknown as { unref?: () => void }).unref?.();
  return t;
}
