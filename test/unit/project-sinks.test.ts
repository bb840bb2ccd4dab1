import { projectSinks } from '../../src/rollup/sinks';
import type { PostHogSink } from '../../src/sink/types';
import { project } from '../support/projects';

describe('per-project PostHog destinations (roll-up)', () => {
  const sink = (name: string): PostHogSink & { name: string } => ({ name, send: async () => undefined });

  it('a project with its own PostHog gets a sink for it (one per host and key); others the deployment’s', async () => {
    const made: string[] = [];
    let reads = 0;
    const projects = new Map([
      ['a', project('a', { posthog: { key: 'phc_aaaaaaaaaaaa', host: 'https://eu.i.posthog.com' } })],
      ['a2', project('a2', { posthog: { key: 'phc_aaaaaaaaaaaa', host: 'https://eu.i.posthog.com' } })],
      ['b', project('b')],
    ]);
    const deployment = sink('deployment');
    const sinks = projectSinks({ defaultSink: deployment, project: async (id) => (reads++, projects.get(id)), make: (d) => (made.push(`${d.host} ${d.key}`), sink(d.key)) });
    expect(((await sinks('a')) as unknown as { name: string }).name).toBe('phc_aaaaaaaaaaaa');
    expect(await sinks('a2')).toBe(await sinks('a'));
    expect(await sinks('b')).toBe(deployment);
    expect(await sinks('default')).toBe(deployment); // no record: the deployment's
    expect(made).toEqual(['https://eu.i.posthog.com phc_aaaaaaaaaaaa']);
    expect(reads).toBe(4); // each project read once (cached)
  });

  it('without a deployment sink, projects without their own have none (their events wait)', async () => {
    const sinks = projectSinks({ project: async () => project('b'), make: () => sink('x') });
    expect(await sinks('b')).toBeUndefined();
  });

  it('a project that cannot be read rejects: its events wait, never going to another destination', async () => {
    const sinks = projectSinks({ defaultSink: sink('deployment'), project: async () => Promise.reject(new Error('DynamoDB down')), make: () => sink('x') });
    await expect(sinks('a')).rejects.toThrow(/lookup unavailable/);
  });
});
