/**
 * Local stand-ins for PostHog: {@link PrintSink} prints a line per event and appends it to a JSONL
 * file (so a local run can be inspected and replayed); {@link NoopSink} drops events.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PostHogEvent } from '../types';
import type { PostHogSink } from './types';

export class PrintSink implements PostHogSink {
  constructor(
    private readonly file?: string,
    private readonly print: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  async send(events: PostHogEvent[]): Promise<void> {
    for (const e of events) {
      const calls = e.properties.calls;
      this.print(`posthog ← ${e.event} ${e.distinctId}${calls !== undefined ? ` calls=${String(calls)}` : ''}`);
    }
    if (this.file) {
      await mkdir(dirname(this.file), { recursive: true });
      await appendFile(this.file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    }
  }
}

export class NoopSink implements PostHogSink {
  async send(): Promise<void> {}
}
