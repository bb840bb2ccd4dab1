import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeBody, MAX_JSON_DEPTH, probeBodyKey } from '../../src/ingest/decode';
import { BadRequestError, HttpError, PayloadTooLargeError } from '../../src/errors';

const FIXTURES = resolve(__dirname, '../fixtures/posthog-node-5.70');

describe('decodeBody', () => {
  it('parses plain JSON text', () => {
    expect(decodeBody({ body: '{"a":1}' }, 1000)).toEqual({ a: 1 });
  });

  it('detects gzip by its magic bytes even without a content-encoding header', () => {
    const gz = gzipSync(JSON.stringify({ batch: [{ event: 'x' }] }));
    expect(decodeBody({ body: gz.toString('base64'), isBase64Encoded: true }, 10_000)).toEqual({ batch: [{ event: 'x' }] });
  });

  it('decodes the real posthog-node 5.70 gzip body byte for byte (its numeric distinct id as its JSON text)', () => {
    const gz = readFileSync(resolve(FIXTURES, 'batch.body.gz'));
    const expected = JSON.parse(readFileSync(resolve(FIXTURES, 'batch.request.json'), 'utf8')).body;
    for (const e of expected.batch) if (typeof e.distinct_id === 'number') e.distinct_id = String(e.distinct_id);
    expect(decodeBody({ body: gz.toString('base64'), isBase64Encoded: true }, 1 << 20)).toEqual(expected);
  });

  it('accepts base64 form bodies (data=…) as older posthog-js sends', () => {
    const data = Buffer.from(JSON.stringify({ event: 'e', distinct_id: 'u' })).toString('base64');
    const body = `data=${encodeURIComponent(data)}`;
    expect(decodeBody({ body, compression: 'base64' }, 10_000)).toEqual({ event: 'e', distinct_id: 'u' });
  });

  it('parses JSON sent with a form content type (curl without -H) as JSON', () => {
    expect(decodeBody({ body: '{"distinctId":"u"}' }, 1000)).toEqual({ distinctId: 'u' });
  });

  it('rejects a gzip bomb with 413 after decompression, not out of memory', () => {
    const gz = gzipSync(Buffer.alloc(5_000_000, 32));
    expect(gz.length).toBeLessThan(10_000);
    expect(() => decodeBody({ body: gz.toString('base64'), isBase64Encoded: true }, 100_000)).toThrow(PayloadTooLargeError);
  });

  it('rejects a body that is too large before parsing', () => {
    expect(() => decodeBody({ body: 'x'.repeat(2000) }, 1000)).toThrow(PayloadTooLargeError);
  });

  it('names malformed JSON', () => {
    try {
      decodeBody({ body: '{"a":' }, 1000);
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(BadRequestError);
      expect((e as BadRequestError).message).toMatch(/malformed JSON/);
      expect((e as BadRequestError).statusCode).toBe(400);
    }
  });

  it('rejects corrupt gzip with 400 and an empty body with 400', () => {
    const bad = Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]);
    expect(() => decodeBody({ body: bad.toString('base64'), isBase64Encoded: true }, 1000)).toThrow(/does not decompress/);
    expect(() => decodeBody({ body: '' }, 1000)).toThrow(/empty body/);
  });

  it('says lz64 is unsupported rather than failing obscurely', () => {
    expect(() => decodeBody({ body: 'abc', compression: 'lz64' }, 1000)).toThrow(/lz64 is not supported/);
  });

  it('keeps a numeric distinct id exactly as written, as PostHog does', () => {
    const body = '{"batch":[{"event":"e","distinct_id":12345678901234567890,"properties":{"$distinct_id":1e3,"n":12345678901234567890}}],"distinctId":42}';
    const v = decodeBody({ body }, 10_000) as { batch: Array<{ distinct_id: unknown; properties: Record<string, unknown> }>; distinctId: unknown };
    expect(v.batch[0]!.distinct_id).toBe('12345678901234567890');
    expect(v.batch[0]!.properties.$distinct_id).toBe('1e3');
    expect(v.distinctId).toBe('42');
    expect(v.batch[0]!.properties.n).toBe(12345678901234567000); // other numbers stay numbers
  });

  it('refuses JSON nested deeper than the limit with a 400 naming the field', () => {
    const deep = `{"batch":[{"event":"e","properties":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}]}`;
    const err = (() => {
      try {
        decodeBody({ body: deep }, 1 << 20);
      } catch (e) {
        return e as BadRequestError;
      }
      throw new Error('expected a 400');
    })();
    expect(err.statusCode).toBe(400);
    expect(err.details![0]!.path).toMatch(/^batch\.0\.properties\.a\.0\.0\./);
    expect(err.details![0]!.message).toBe(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(decodeBody({ body: `{"a":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}` }, 10_000)).toBeDefined();
  });

  it('answers null, 42, true and a form without data with a message a person understands', () => {
    for (const body of ['null', '42', 'true', '"text"']) expect(decodeBody({ body }, 1000)).toEqual(JSON.parse(body));
    expect(() => decodeBody({ body: 'foo=bar' }, 1000)).toThrow(/form-encoded body without a data field \(fields: foo\)/);
    expect(() => decodeBody({ body: 'hello world' }, 1000)).toThrow(/malformed JSON/);
    // base64 JSON with and without padding still decodes
    for (const s of ['{"a":1}', '{"ab":1}', '{"abc":12}']) expect(decodeBody({ body: Buffer.from(s).toString('base64') }, 1000)).toEqual(JSON.parse(s));
  });

  it('gzip passed as text: repaired when every byte survived, a 400 naming the client setting when bytes were lost', () => {
    const gz = gzipSync(JSON.stringify({ api_key: 'k', batch: [{ event: 'e', distinct_id: 'u' }] }));
    expect(decodeBody({ body: gz.toString('latin1') }, 10_000)).toEqual({ api_key: 'k', batch: [{ event: 'e', distinct_id: 'u' }] });
    const lossy = gz.toString('utf8'); // invalid UTF-8 replaced by U+FFFD, as a text conversion does
    const err = (() => {
      try {
        decodeBody({ body: lossy }, 10_000);
      } catch (e) {
        return e as HttpError;
      }
      throw new Error('expected a 400');
    })();
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('body_altered_in_transit');
    expect(err.message).toMatch(/disableCompression: true/);
    expect(err.message).toMatch(/disable_compression: true/);
  });
});

describe('probeBodyKey', () => {
  it('reads api_key or token from the first bytes of a posthog-node body, plain or gzip, without decompressing the rest', () => {
    const batch = Array.from({ length: 20_000 }, (_, i) => ({ event: 'e', distinct_id: `u${i}`, properties: { pad: 'x'.repeat(100) } }));
    const gz = gzipSync(JSON.stringify({ api_key: 'phc_wrong', batch }));
    expect(probeBodyKey({ body: gz.toString('base64'), isBase64Encoded: true })).toBe('phc_wrong');
    expect(probeBodyKey({ body: JSON.stringify({ token: 'tok\\"x', batch: [] }) })).toBe('tok\\"x');
  });

  it('is undefined when the body does not start with the key (checked after parsing instead)', () => {
    expect(probeBodyKey({ body: JSON.stringify({ batch: [], api_key: 'k' }) })).toBeUndefined();
    expect(probeBodyKey({ body: JSON.stringify([{ event: 'e', properties: { token: 'k' } }]) })).toBeUndefined();
    expect(probeBodyKey({ body: '' })).toBeUndefined();
  });
});
