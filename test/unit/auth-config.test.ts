import { createKeyChecker, keyFromHeaders } from '../../src/ingest/auth';
import { ConfigError, loadAggregatorConfig, loadIngestConfig } from '../../src/config';
import { UnauthorizedError } from '../../src/errors';

describe('API keys', () => {
  const check = createKeyChecker(['key-one-123', 'key-two-456']);
  it('accepts any configured key (rotation) and rejects others with 401', () => {
    expect(() => check('key-two-456')).not.toThrow();
    expect(() => check('key-two-45')).toThrow(UnauthorizedError);
    expect(() => check(undefined)).toThrow(/missing API key/);
  });
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
      expect(msg).toMatch(/TALLY_API_KEYS/);
    }
  });
  it('accepts TALLY_API_KEY as one key and applies defaults', () => {
    const c = loadIngestConfig({ TALLY_API_KEY: 'abcdefgh', TALLY_QUEUE_URL: 'http://localhost:1/q' });
    expect(c.TALLY_API_KEYS).toEqual(['abcdefgh']);
    expect(c.TALLY_MAX_MESSAGE_BYTES).toBe(1024 * 1024);
    const a = loadAggregatorConfig({ TALLY_TABLE_NAME: 't' });
    expect(a.POSTHOG_REQUEST_TIMEOUT_MS).toBe(5000);
    expect(a.POSTHOG_HOST).toBe('https://us.i.posthog.com');
  });
});
