import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeBody } from '../../src/ingest/decode';
import { BadRequestError, PayloadTooLargeError } from '../../src/errors';

const FIXTURES = resolve(__dirname, '../fixtures/posthog-node-5.70');

describe('decodeBody', () => {
  it('parses plain JSON text', () => {
    expect(decodeBody({ body: '{"a":1}' }, 1000)).toEqual({ a: 1 });
  });

  it('detects gzip by its magic bytes even without a content-encoding header', () => {
    const gz = gzipSync(JSON.stringify({ batch: [{ event: 'x' }] }));
    expect(decodeBody({ body: gz.toString('base64'), isBase64Encoded: true }, 10_000)).toEqual({ batch: [{ event: 'x' }] });
  });

  it('decodes the real posthog-node 5.70 gzip body byte for byte', () => {
    const gz = readFileSync(resolve(FIXTURES, 'batch.body.gz'));
    const expected = JSON.parse(readFileSync(resolve(FIXTURES, 'batch.request.json'), 'utf8')).body;
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
});
