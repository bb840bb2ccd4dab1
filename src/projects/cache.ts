/**
 * A bounded, time-limited cache in front of a lookup (keys, projects): what a database in the request
 * path must never do is make ingestion lag or drop events, so a hot entry is answered from memory,
 * refreshed after `ttlMs` (the bound on how long a revoked key keeps working in a warm instance), and,
 * when the lookup fails, served stale for at most `staleMs` more. Misses are cached too (`undefined`),
 * so an unknown key costs one lookup per `ttlMs`, not one per request. Least recently used entries are
 * evicted beyond `maxEntries`.
 */

export interface LookupCacheOptions {
  ttlMs: number;
  staleMs: number;
  maxEntries: number;
  now: () => number;
}

export const lookupCacheDefaults = { ttlMs: 30_000, staleMs: 10 * 60_000, maxEntries: 10_000, now: Date.now } as const;

interface Entry<V> {
  value: V | undefined;
  at: number;
}

/** The lookup failed and nothing fresh enough is cached: the caller answers 503, never a silent 2xx. */
export class LookupUnavailableError extends Error {
  constructor(readonly cause: unknown) {
    super(`lookup unavailable: ${String(cause)}`);
    this.name = 'LookupUnavailableError';
  }
}

export class LookupCache<V> {
  private readonly o: LookupCacheOptions;
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inflight = new Map<string, Promise<V | undefined>>();

  constructor(
    private readonly lookup: (key: string) => Promise<V | undefined>,
    opts: Partial<LookupCacheOptions> = {},
  ) {
    this.o = { ...lookupCacheDefaults, ...opts };
  }

  /**
   * The cached answer when fresh (`{value}`, `value` undefined for a cached miss), else `undefined`:
   * synchronous, for the hot path, which then needs no lookup and no promise.
   */
  peek(key: string): { value: V | undefined } | undefined {
    const e = this.entries.get(key);
    if (!e || this.o.now() - e.at >= this.o.ttlMs) return undefined;
    // Touch: most recently used last.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  /** The cached value when fresh, else a lookup (one at a time per key). */
  async get(key: string): Promise<V | undefined> {
    const hit = this.peek(key);
    if (hit) return hit.value;
    const now = this.o.now();
    const e = this.entries.get(key);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.lookup(key).then(
        (value) => {
          this.set(key, value);
          return value;
        },
        (err: unknown) => {
          // Stale-while-error, bounded: a known positive answer keeps working a while; nothing else does.
          if (e && e.value !== undefined && now - e.at < this.o.ttlMs + this.o.staleMs) return e.value;
          throw new LookupUnavailableError(err);
        },
      );
      this.inflight.set(key, p);
      void p.finally(() => this.inflight.delete(key)).catch(() => undefined);
    }
    return p;
  }

  /** Forgets a key (after this process changed it). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private set(key: string, value: V | undefined): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: this.o.now() });
    while (this.entries.size > this.o.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}
