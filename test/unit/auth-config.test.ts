import { keyFromHeaders } from '../../src/ingest/auth';
import { ConfigError, loadAggregatorConfig, loadIngestConfig } from '../../src/config';

describe('API keys', () => {
  it('reads Bearer and x-api-key', () => {
    expect(keyFromHeaders({ authorization: 'Bearer abc' })).toBe('abc');
    expect(keyFromHeaders({ 'x-api-key': 'def' })).toBe('def');
    expect(keyFromHeaders({ authorization: 'Basic zzz' })).toBeUndefined();
  });
});

describe('config', () => {
  it('names every missing or malformed variable', () => {
    try {
      loadIngestConfig({ TALLY_QUEUE_URL: 'not a url' });
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/TALLY_QUEUE_URL/);
      expect(msg).toMatch(/TALLY_TABLE_NAME/); // ingest looks keys up in the table
    }
  });
  it('accepts TALLY_API_KEY as one key and applies defaults', () => {
    const c = loadIngestConfig({ TALLY_API_KEY: 'abcdefgh', TALLY_QUEUE_URL: 'http://localhost:1/q', TALLY_TABLE_NAME: 't' });
    expect(c.TALLY_API_KEYS).toEqual(['abcdefgh']);
    expect(c.TALLY_TOKEN_SECRET).toBeUndefined();
    expect(c.TALLY_MAX_MESSAGE_BYTES).toBe(1024 * 1024);
    const a = loadAggregatorConfig({ TALLY_TABLE_NAME: 't' });
    expect(a.POSTHOG_REQUEST_TIMEOUT_MS).toBe(5000);
    expect(a.POSTHOG_HOST).toBe('https://us.i.posthog.com');
  });
  it('configured keys are optional (managed keys need none), and must be usable keys', () => {
    const base = { TALLY_QUEUE_URL: 'http://localhost:1/q', TALLY_TABLE_NAME: 't' };
    expect(loadIngestConfig(base).TALLY_API_KEYS).toEqual([]);
    expect(() => loadIngestConfig({ ...base, TALLY_API_KEYS: 'has a space inside' })).toThrow(/TALLY_API_KEYS.*printable ASCII/);
    expect(() => loadIngestConfig({ ...base, TALLY_TOKEN_SECRET: 'too short' })).toThrow(/TALLY_TOKEN_SECRET.*32/);
    expect(loadIngestConfig({ ...base, TALLY_TOKEN_SECRET: 'x'.repeat(32) }).TALLY_TOKEN_SECRET).toHaveLength(32);
  });
});
