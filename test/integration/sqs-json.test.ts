/**
 * SqsJsonQueue: SigV4 against known vectors, the real SQS JSON protocol against fauxqs, and the
 * failure semantics of sqs-sdk.ts (failed entries retried, sender faults and outages → 503) against a
 * scripted HTTP server.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateQueueCommand, ReceiveMessageCommand, DeleteMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { QueueUnavailableError } from '../../src/errors';
import { packMessages } from '../../src/queue/pack';
import { SqsJsonQueue, SigV4 } from '../../src/queue/sqs-json';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { localAwsClientConfig, startSqs, type Emulator } from '../../local/emulators';

const creds = { accessKeyId: 'local', secretAccessKey: 'local' };
const ev = (i: number, pad = 50): QueuedEvent => ({
  uuid: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`,
  event: 'big_route',
  distinct_id: `user-${i % 7}`,
  properties: { pad: 'x'.repeat(pad) },
  timestamp: '2026-11-22T17:34:00.000Z',
  received_at: 1,
});

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

describe('against fauxqs', () => {
  let emu: Emulator;
  let sdk: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    emu = await startSqs({ port: 0 });
    sdk = new SQSClient(localAwsClientConfig(emu.endpoint, 'us-east-1'));
    const r = await sdk.send(new CreateQueueCommand({ QueueName: 'fast-test' }));
    queueUrl = new URL(new URL(r.QueueUrl!).pathname, emu.endpoint).href;
  });
  afterAll(async () => {
    sdk?.destroy();
    await emu?.stop();
  });

  async function drain(): Promise<QueueMessageBody[]> {
    const out: QueueMessageBody[] = [];
    for (;;) {
      const r = await sdk.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!r.Messages?.length) return out;
      for (const m of r.Messages) out.push(JSON.parse(m.Body!) as QueueMessageBody);
      await sdk.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: r.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  }

  test('queues every event in the messages pack() makes, over several SendMessageBatch calls', async () => {
    const q = new SqsJsonQueue({ queueUrl, region: 'us-east-1', endpoint: emu.endpoint, credentials: creds, maxMessageBytes: 4096 });
    const events = Array.from({ length: 600 }, (_, i) => ev(i));
    const r = await q.send(events);
    const expected = packMessages(events, 4096);
    expect(r.messages).toBe(expected.length);
    expect(r.calls).toBe(Math.ceil(expected.length / 10));
    const got = await drain();
    expect(got.map((m) => m.id).sort()).toEqual(expected.map((m) => m.id).sort());
    expect(got.flatMap((m) => m.events.map((e) => e.uuid)).sort()).toEqual(events.map((e) => e.uuid).sort());
    q.destroy();
  });

  test('a missing queue is a 503 without retries', async () => {
    const q = new SqsJsonQueue({ queueUrl: `${emu.endpoint}/000000000000/nope`, region: 'us-east-1', endpoint: emu.endpoint, credentials: creds });
    const err = await q.send([ev(1)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect((err as QueueUnavailableError).statusCode).toBe(503);
    expect((err as Error).message).toMatch(/QueueDoesNotExist|NonExistentQueue/);
    q.destroy();
  });
});

describe('failure semantics (scripted server)', () => {
  let server: Server;
  let endpoint: string;
  let script: Array<(entries: { Id: string }[]) => { status: number; body: unknown } | 'destroy'> = [];
  let seen: { target: string; auth: string; entries: { Id: string; MessageBody: string }[] }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { Entries: { Id: string; MessageBody: string }[] };
        seen.push({ target: String(req.headers['x-amz-target']), auth: String(req.headers.authorization), entries: body.Entries });
        const step = script.shift() ?? ((e) => ({ status: 200, body: { Successful: e.map((x) => ({ Id: x.Id })) } }));
        const r = step(body.Entries);
        if (r === 'destroy') {
          req.socket.destroy();
          return;
        }
        res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify(r.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    script = [];
    seen = [];
  });
  const queue = () => new SqsJsonQueue({ queueUrl: `${endpoint}/1/q`, region: 'eu-west-1', endpoint, credentials: creds, maxMessageBytes: 4096, retryBaseMs: 1 });

  test('signs each call for SQS in the queue region and names the JSON target', async () => {
    await queue().send([ev(1)]);
    expect(seen[0]!.target).toBe('AmazonSQS.SendMessageBatch');
    expect(seen[0]!.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
  });

  test('retries only the entries SQS reports as failed, then succeeds', async () => {
    script.push((e) => ({ status: 200, body: { Successful: e.filter((x) => x.Id !== '1').map((x) => ({ Id: x.Id })), Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }] } }));
    const r = await queue().send(Array.from({ length: 30 }, (_, i) => ev(i, 200)));
    expect(seen).toHaveLength(2);
    expect(r.messages).toBe(seen[0]!.entries.length);
    expect(seen[1]!.entries).toHaveLength(1);
    expect(seen[1]!.entries[0]!.MessageBody).toBe(seen[0]!.entries[1]!.MessageBody);
  });

  test('rejects with 503 when entries keep failing (first try + 2 rounds)', async () => {
    const fail = (e: { Id: string }[]) => ({ status: 200, body: { Successful: [], Failed: e.map((x) => ({ Id: x.Id, Code: 'InternalError', SenderFault: false })) } });
    script.push(fail, fail, fail);
    await expect(queue().send([ev(1)])).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(seen).toHaveLength(3);
  });

  test('rejects with 503 on a sender fault without retrying', async () => {
    script.push((e) => ({ status: 200, body: { Successful: [], Failed: [{ Id: e[0]!.Id, Code: 'InvalidMessageContents', SenderFault: true }] } }));
    const err = await queue().send([ev(1)]).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect(seen).toHaveLength(1);
  });

  test('retries whole calls on 5xx, throttling and dropped connections, within maxAttempts', async () => {
    script.push(() => ({ status: 500, body: { __type: 'com.amazonaws.sqs#InternalError' } }), () => 'destroy');
    await expect(queue().send([ev(1)])).resolves.toMatchObject({ messages: 1 });
    expect(seen).toHaveLength(3);

    seen = [];
    script.push(
      () => ({ status: 400, body: { __type: 'com.amazonaws.sqs#ThrottlingException' } }),
      () => ({ status: 503, body: {} }),
      () => ({ status: 503, body: {} }),
    );
    const err = await queue().send([ev(1)]).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect(seen).toHaveLength(3);
  });

  test('a non-retryable 4xx is a 503 at once', async () => {
    script.push(() => ({ status: 400, body: { __type: 'com.amazonaws.sqs#AccessDenied', message: 'no' } }));
    await expect(queue().send([ev(1)])).rejects.toThrow(/AccessDenied/);
    expect(seen).toHaveLength(1);
  });

  test('an unreachable endpoint is a 503', async () => {
    const q = new SqsJsonQueue({ queueUrl: 'http://127.0.0.1:9/1/q', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: creds, retryBaseMs: 1 });
    await expect(q.send([ev(1)])).rejects.toThrow(/queue unavailable \(ECONNREFUSED\)/);
  });

  test('reads credentials from the environment by default and fails closed without them', async () => {
    const saved = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      const q = new SqsJsonQueue({ queueUrl: `${endpoint}/1/q`, region: 'us-east-1', endpoint });
      await expect(q.send([ev(1)])).rejects.toThrow(/no AWS credentials/);
      process.env.AWS_ACCESS_KEY_ID = 'AKIAENV';
      process.env.AWS_SECRET_ACCESS_KEY = 's';
      process.env.AWS_SESSION_TOKEN = 'session';
      await q.send([ev(2)]);
      expect(seen.at(-1)!.auth).toContain('Credential=AKIAENV/');
      expect(seen.at(-1)!.auth).toContain('x-amz-security-token');
    } finally {
      process.env = saved;
    }
  });
});
