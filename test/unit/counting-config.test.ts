import { ConfigError, loadAggregatorConfig, loadLocalConfig, loadQueryConfig } from '../../src/config';

const base = { TALLY_TABLE_NAME: 't' };

describe('counting configuration', () => {
  it('defaults: 60 s windows rolled up 60 s after they close, 8 shards, no dimensions', () => {
    expect(loadAggregatorConfig(base)).toMatchObject({ TALLY_WINDOW_SECONDS: 60, TALLY_GRACE_SECONDS: 60, TALLY_SHARDS: 8, TALLY_DIMENSIONS: [], TALLY_CLAIM_STALE_SECONDS: 120 });
    expect(loadQueryConfig({ ...base, TALLY_API_KEYS: 'k'.repeat(12), TALLY_DIMENSIONS: 'route, status' })).toMatchObject({ TALLY_DIMENSIONS: ['route', 'status'] });
  });

  it.each([
    [{ TALLY_WINDOW_SECONDS: '45' }, 'TALLY_WINDOW_SECONDS'],
    [{ TALLY_WINDOW_SECONDS: '7200' }, 'TALLY_WINDOW_SECONDS'],
    [{ TALLY_DIMENSIONS: 'a,b,c,d' }, 'TALLY_DIMENSIONS'],
    [{ TALLY_DIMENSIONS: 'has space' }, 'TALLY_DIMENSIONS'],
    [{ TALLY_GRACE_SECONDS: '300', TALLY_CLAIM_STALE_SECONDS: '120' }, 'TALLY_CLAIM_STALE_SECONDS'],
    [{ TALLY_SHARDS: '0' }, 'TALLY_SHARDS'],
    [{ POSTHOG_HTTP: 'undici' }, 'POSTHOG_HTTP: must be node or fetch'],
  ])('refuses %j, naming %s', (env, name) => {
    expect(() => loadAggregatorConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadAggregatorConfig({ ...base, ...env })).toThrow(name);
  });

  it('POSTHOG_HTTP: posthog-node goes out over node:http unless fetch is asked for', () => {
    expect(loadAggregatorConfig(base).POSTHOG_HTTP).toBe('node');
    expect(loadAggregatorConfig({ ...base, POSTHOG_HTTP: 'fetch' }).POSTHOG_HTTP).toBe('fetch');
  });

  it('accepts every window length that tiles an hour', () => {
    for (const w of ['10', '15', '30', '60', '300', '900', '3600']) expect(loadAggregatorConfig({ ...base, TALLY_WINDOW_SECONDS: w }).TALLY_WINDOW_SECONDS).toBe(Number(w));
  });

  it('npm start checks the stale period against the grace too', () => {
    expect(loadLocalConfig({ TALLY_WINDOW_SECONDS: '10', TALLY_GRACE_SECONDS: '4', TALLY_CLAIM_STALE_SECONDS: '4' })).toMatchObject({ TALLY_WINDOW_SECONDS: 10 });
    expect(() => loadLocalConfig({ TALLY_GRACE_SECONDS: '90' })).toThrow('TALLY_CLAIM_STALE_SECONDS');
  });
});
