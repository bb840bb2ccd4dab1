/**
 * Sampling: which queued events are also sent raw to PostHog. The ingest handler asks a
 * {@link Sampler} after the queue took the events, then hands the sampled ones to a {@link RawCapture}
 * and waits for it, with a bound. Implementations: posthog-node local evaluation (./posthog.ts),
 * posthog-node capture (./capture.ts), and the disabled pair (./disabled.ts).
 */
import type { QueuedEvent } from '../types';
import type { PersonPropertyMapping } from './person';

/** One event in the sample, with the probability it had of being in it. */
export interface SampledEvent {
  event: QueuedEvent;
  /** Inclusion probability in (0, 1]: an extrapolated count weighs each sampled event 1 / rate. */
  rate: number;
}

export interface SampleOutcome {
  sampled: SampledEvent[];
  /** Counted events that were evaluated against the flag. */
  evaluated: number;
  /** Counted events not evaluated because no flag definitions were loaded (never a remote call instead). */
  unavailable: number;
}

export interface Sampler {
  /**
   * Picks the sampled events among `events`. Only counted events (not `$`-prefixed) are candidates.
   * Never makes a network call and never rejects. On a cold start it waits, once per instance and at
   * most its configured bound, for the first flag definitions.
   */
  sample(events: readonly QueuedEvent[]): Promise<SampleOutcome>;
  /** Stops background work (the definitions poller). */
  close(): Promise<void>;
}

export interface RawCapture {
  /**
   * Sends the events to PostHog, each with `sample_rate`, and resolves once PostHog took all of them.
   * Rejects with a {@link CaptureError} otherwise, within `timeoutMs` whatever happens on the wire.
   * `destination`: the PostHog of the events' project, when it has its own (else the deployment's).
   */
  capture(events: readonly SampledEvent[], timeoutMs?: number, destination?: PostHogDestination): Promise<void>;
}

/** A PostHog project: its project key and ingestion host (a project's own, `Project.posthog`). */
export interface PostHogDestination {
  key: string;
  host: string;
}

/** Raw capture did not deliver every event. */
export class CaptureError extends Error {
  constructor(
    readonly failed: number,
    readonly total: number,
    readonly reason: string,
  ) {
    super(`raw capture delivered ${total - failed} of ${total} sampled events: ${reason}`);
    this.name = 'CaptureError';
  }
}

/** The `sample_rate` property every raw sampled event carries. */
export const SAMPLE_RATE_PROPERTY = 'sample_rate';

/** True for events tally counts (and may sample); `$` events are forwarded to PostHog by the aggregator. */
export const isCounted = (e: QueuedEvent): boolean => !e.event.startsWith('$');

/** What the ingest handler needs for sampling. */
export interface IngestSampling {
  sampler: Sampler;
  capture: RawCapture;
  /** Bound of the raw capture on the request path. */
  timeoutMs: number;
}

/** The config fields sampling reads (src/config.ts). */
export interface SamplingSettings {
  POSTHOG_API_KEY?: string;
  POSTHOG_HOST: string;
  /** `fetch`: posthog-node's own global fetch for raw captures instead of tally's node:http one. */
  POSTHOG_HTTP?: 'node' | 'fetch';
  POSTHOG_PERSONAL_API_KEY?: string;
  TALLY_SAMPLING_FLAG_KEY: string;
  TALLY_SAMPLING_PERSON_PROPERTIES: PersonPropertyMapping;
  TALLY_SAMPLING_TIMEOUT_MS: number;
  TALLY_SAMPLING_POLL_SECONDS: number;
}

/** How sampling reports what it does (definitions loaded, refused requests, failures). */
export type SamplingLog = (level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>) => void;
