/** Sampling switched off (no personal/secret key configured): nothing is sampled, nothing is sent. */
import type { QueuedEvent } from '../types';
import type { RawCapture, SampleOutcome, Sampler } from './types';

export class DisabledSampler implements Sampler {
  async sample(_events: readonly QueuedEvent[]): Promise<SampleOutcome> {
    return { sampled: [], evaluated: 0, unavailable: 0 };
  }
  async close(): Promise<void> {}
}

export class NoopCapture implements RawCapture {
  async capture(): Promise<void> {}
}
