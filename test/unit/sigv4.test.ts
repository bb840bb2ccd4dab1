/** SigV4 (src/aws/sigv4.ts) against the AWS SigV4 test suite and the AWS SDK's own signer. */
import { createHash } from 'node:crypto';
import { SigV4 } from '../../src/aws/sigv4';

describe('SigV4', () => {
  const date = new Date('2015-08-30T12:36:00Z');
  const secret = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

  test('AWS SigV4 test suite: post-vanilla', () => {
    const h = new SigV4('us-east-1', 'service').sign(secret, 'example.amazonaws.com', '/', {}, '', date);
    expect(h.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    );
    expect(h['x-amz-date']).toBe('20150830T123600Z');
  });

  test('same signature as @smithy/signature-v4 for an SQS JSON request with a session token', () => {
    // Reference value produced by @smithy/signature-v4 (the AWS SDK's signer) for these exact inputs.
    const body = '{"QueueUrl":"x","Entries":[]}';
    const h = new SigV4('us-east-1', 'sqs').sign(
      { ...secret, sessionToken: 'tok' },
      'sqs.us-east-1.amazonaws.com',
      '/',
      { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessageBatch', 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex') },
      body,
      date,
    );
    expect(h.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target, Signature=f7975e36dd01b922cda603162846b381d95fe11467a4cb9826ac4e3b5524d3c2',
    );
    expect(h['x-amz-security-token']).toBe('tok');
  });
});

