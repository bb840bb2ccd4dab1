/**
 * Per-project PostHog destinations for the outbox (src/rollup/outbox.ts): a project with its own PostHog
 * (`projects create --posthog-key phc_… --posthog-host URL`) gets its batch events and forwarded `$`
 * events there; every other project's go to the deployment's sink (`POSTHOG_API_KEY`). Projects are read
 * through a cache (30 s, like ingest's), sinks are made once per (host, key).
 */
import { LookupCache, type LookupCacheOptions } from '../projects/cache';
import type { Project } from '../projects/types';
import type { PostHogSink } from '../sink/types';
import type { SinkFor } from './outbox';

export interface ProjectSinksOptions {
  /** The deployment's sink; unset: projects without their own PostHog wait in the outbox. */
  defaultSink?: PostHogSink;
  /** Reads a project (`ProjectStore.getProject`). */
  project: (id: string) => Promise<Project | undefined>;
  /** A sink for a project's own PostHog. */
  make: (destination: { key: string; host: string }) => PostHogSink;
  cache?: Partial<LookupCacheOptions>;
}

/**
 * The {@link SinkFor} of the roll-up. A project that cannot be read (DynamoDB down) rejects, so its events
 * wait rather than go to the deployment's PostHog by mistake; a project with no record (the `default`
 * project of a deployment that never imported keys) goes to the deployment's.
 */
export function projectSinks(o: ProjectSinksOptions): SinkFor & { size(): number } {
  const projects = new LookupCache<Project>(o.project, o.cache);
  const made = new Map<string, PostHogSink>();
  const sinkFor = async (id: string): Promise<PostHogSink | undefined> => {
    const p = await projects.get(id);
    if (!p?.posthog) return o.defaultSink;
    const k = `${p.posthog.host}\n${p.posthog.key}`;
    let s = made.get(k);
    if (!s) {
      s = o.make(p.posthog);
      made.set(k, s);
      if (made.size > 1000) made.delete(made.keys().next().value as string);
    }
    return s;
  };
  return Object.assign(sinkFor, { size: () => made.size });
}
