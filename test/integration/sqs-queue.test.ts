/**
 * The SQS {@link EventQueue} as production builds it (src/runtime/queue.ts), over both implementations
 * `TALLY_AWS_CLIENT` chooses between: `json` (tally's own JSON-protocol client, the default) and `sdk`
 * (the AWS SDK v3 client). One suite for both: the real SQS wire protocol against fauxqs, and the failure
 * semantics of the shared send loop against a scripted HTTP server (failed entries sent again, a sender
 * fault is a 400 sent once, outages are a 503, a hanging SQS ends at the invocation's deadline).
 * The JSON client's own signing and credentials are checked at the end.
 */
import { createHash } from 'node:crypto';
import { CreateQueueCommand, ReceiveMessageCommand, DeleteMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BadRequestError, QueueUnavailableError } from '../../src/errors';
import { packMessages } from '../../src/queue/pack';
import { createEventQueue, type QueueConfig } from '../../src/runtime/queue';
import type { QueueMessageBody, QueuedEvent } from '../../src/types';
import { withDeadline } from '../../src/util/deadline';
import { localAwsClientConfig, startSqs, type Emulator } from '../../local/emulators';
import { listenLoopback, type LoopbackServer } from '../support/loopback';

jest.setTimeout(30_000);

const ev = (i: number, pad = 50): QueuedEvent => ({
  uuid: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`,
  event: 'big_route',
  distinct_id: `user-${i % 7}`,
  properties: { pad: 'x'.repeat(pad) },
  timestamp: '2026-11-22T17:34:00.000Z',
  received_at: 1,
});

const IMPLEMENTATIONS = ['json', 'sdk'] as const;
const build = (impl: (typeof IMPLEMENTATIONS)[number], c: Omit<QueueConfig, 'AWS_REGION'> & { AWS_REGION?: string }) =>
  createEventQueue({ AWS_REGION: 'us-east-1', TALLY_AWS_CLIENT: impl, ...c }, { retryBaseMs: 1 });

describe.each(IMPLEMENTATIONS)('TALLY_AWS_CLIENT=%s', (impl) => {
  describe('against fauxqs', () => {
    let emu: Emulator;
    let sdk: SQSClient;
    let queueUrl: string;

    beforeAll(async () => {
      emu = await startSqs({ port: 0 });
      sdk = new SQSClient(localAwsClientConfig(emu.endpoint, 'us-east-1'));
      const r = await sdk.send(new CreateQueueCommand({ QueueName: `queue-test-${impl}` }));
      queueUrl = new URL(new URL(r.QueueUrl!).pathname, emu.endpoint).href;
    });
    afterAll(async () => {
      sdk?.destroy();
      await emu?.stop();
    });

    async function drain(): Promise<{ raw: string; body: QueueMessageBody }[]> {
      const out: { raw: string; body: QueueMessageBody }[] = [];
      for (;;) {
        const r = await sdk.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        if (!r.Messages?.length) return out;
        for (const m of r.Messages) out.push({ raw: m.Body!, body: JSON.parse(m.Body!) as QueueMessageBody });
        await sdk.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: r.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    }

    test('queues every event in the messages pack() makes, over several SendMessageBatch calls', async () => {
      const q = build(impl, { TALLY_QUEUE_URL: queueUrl, TALLY_SQS_ENDPOINT: emu.endpoint, TALLY_MAX_MESSAGE_BYTES: 4096 });
      const events = Array.from({ length: 600 }, (_, i) => ev(i));
      const r = await q.send(events);
      const expected = packMessages(events, 4096);
      expect(r.messages).toBe(expected.length);
      expect(r.calls).toBe(Math.ceil(expected.length / 10));
      const got = await drain();
      expect(got.map((m) => m.body.id).sort()).toEqual(expected.map((m) => m.id).sort());
      expect(got.flatMap((m) => m.body.events.map((e) => e.uuid)).sort()).toEqual(events.map((e) => e.uuid).sort());
      q.destroy();
    });

    test('any character is queued: emoji, U+FFFE/U+FFFF, lone surrogates, control characters; the body is ASCII and parses back to the same strings', async () => {
      const q = build(impl, { TALLY_QUEUE_URL: queueUrl, TALLY_SQS_ENDPOINT: emu.endpoint });
      const strange = { emoji: '😀 ok', nonchars: 'a\uFFFEb\uFFFFc', lone: 'x\uD800y', control: 'tab\tnul\u0000', accents: 'déjà vu €' };
      const e = { ...ev(1), distinct_id: 'user-😀', event: 'évènement', properties: strange };
      await q.send([e]);
      const [m] = await drain();
      expect(/^[\x20-\x7e]*$/.test(m!.raw)).toBe(true);
      expect(m!.body.events[0]).toEqual(e);
      q.destroy();
    });

    test('a missing queue is a 503, not retried as entries', async () => {
      const q = build(impl, { TALLY_QUEUE_URL: `${emu.endpoint}/000000000000/nope`, TALLY_SQS_ENDPOINT: emu.endpoint });
      const err = await q.send([ev(1)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueUnavailableError);
      expect((err as QueueUnavailableError).statusCode).toBe(503);
      expect((err as Error).message).toMatch(/QueueDoesNotExist|NonExistentQueue/);
      q.destroy();
    });
  });

  describe('failure semantics (scripted server)', () => {
    let server: LoopbackServer;
    let endpoint: string;
    type Entry = { Id: string; MessageBody: string };
    let script: Array<(entries: Entry[]) => { status: number; body: unknown } | 'destroy' | 'hang'> = [];
    /** A successful entry as SQS reports it (the SDK checks the body's MD5). */
    const success = (x: Entry) => ({ Id: x.Id, MessageId: `m-${x.Id}`, MD5OfMessageBody: createHash('md5').update(x.MessageBody).digest('hex') });
    let seen: { target: string; auth: string; entries: { Id: string; MessageBody: string }[] }[] = [];

    beforeAll(async () => {
      server = await listenLoopback((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { Entries: { Id: string; MessageBody: string }[] };
          seen.push({ target: String(req.headers['x-amz-target']), auth: String(req.headers.authorization), entries: body.Entries });
          const step = script.shift() ?? ((e) => ({ status: 200, body: { Successful: e.map(success), Failed: [] } }));
          const r = step(body.Entries);
          if (r === 'hang') return;
          if (r === 'destroy') {
            req.socket.destroy();
            return;
          }
          res.writeHead(r.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'r' });
          res.end(JSON.stringify(r.body));
        });
      });
      endpoint = server.url;
    });
    afterAll(() => server.close());
    beforeEach(() => {
      script = [];
      seen = [];
    });
    const queue = () => build(impl, { TALLY_QUEUE_URL: `${endpoint}/1/q`, AWS_REGION: 'eu-west-1', TALLY_SQS_ENDPOINT: endpoint, TALLY_MAX_MESSAGE_BYTES: 4096 });
    const okExcept = (failedId: string, code = 'InternalError', senderFault = false) => (e: Entry[]) => ({
      status: 200,
      body: {
        Successful: e.filter((x) => x.Id !== failedId).map(success),
        Failed: [{ Id: failedId, Code: code, SenderFault: senderFault, Message: `${code} for ${failedId}` }],
      },
    });

    test('sends only the entries SQS reports as failed again, then succeeds', async () => {
      script.push(okExcept('1'));
      const r = await queue().send(Array.from({ length: 30 }, (_, i) => ev(i, 200)));
      expect(seen).toHaveLength(2);
      expect(seen[0]!.target).toBe('AmazonSQS.SendMessageBatch');
      expect(r.messages).toBe(seen[0]!.entries.length);
      expect(seen[1]!.entries).toHaveLength(1);
      expect(seen[1]!.entries[0]!.MessageBody).toBe(seen[0]!.entries[1]!.MessageBody);
    });

    test('rejects with 503 when entries keep failing (first try + 2 rounds)', async () => {
      script.push(okExcept('0'), okExcept('0'), okExcept('0'));
      await expect(queue().send([ev(1)])).rejects.toBeInstanceOf(QueueUnavailableError);
      expect(seen).toHaveLength(3);
    });

    test('a sender fault is a 400 naming SQS’s reason, sent once (a retry could never succeed)', async () => {
      script.push(okExcept('0', 'InvalidMessageContents', true));
      const err = await queue().send([ev(1)]).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).statusCode).toBe(400);
      expect((err as Error).message).toMatch(/\(InvalidMessageContents: InvalidMessageContents for 0\); nothing was accepted/);
      expect(seen).toHaveLength(1);
    });

    test('a sender fault after other messages were queued says so', async () => {
      // Two calls (> 10 messages); the second call's first entry is refused as invalid.
      const events = Array.from({ length: 60 }, (_, i) => ev(i, 1000));
      script.push((e) => ({ status: 200, body: { Successful: e.map(success), Failed: [] } }), okExcept('0', 'InvalidParameterValue', true));
      const err = await queue().send(events).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as Error).message).toMatch(/other message\(s\) of this request were queued and count/);
    });

    test('whole calls are retried on 5xx, throttling and dropped connections, within maxAttempts', async () => {
      script.push(() => ({ status: 500, body: { __type: 'com.amazonaws.sqs#InternalError' } }), () => 'destroy');
      await expect(queue().send([ev(1)])).resolves.toMatchObject({ messages: 1 });
      expect(seen).toHaveLength(3);

      seen = [];
      script.push(
        () => ({ status: 400, body: { __type: 'com.amazonaws.sqs#ThrottlingException', message: 'slow down' } }),
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

    test('a hanging SQS: the send ends at the invocation’s deadline with a 503', async () => {
      script.push(() => 'hang', () => 'hang', () => 'hang');
      const t0 = Date.now();
      const err = await withDeadline(Date.now() + 400, () => queue().send([ev(1)])).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(QueueUnavailableError);
      expect(Date.now() - t0).toBeLessThan(2000); // far below the 3 s per-attempt timeout × 3 attempts
    });

    test('an unreachable endpoint is a 503', async () => {
      const q = build(impl, { TALLY_QUEUE_URL: 'http://127.0.0.1:9/1/q', TALLY_SQS_ENDPOINT: 'http://127.0.0.1:9' });
      await expect(q.send([ev(1)])).rejects.toBeInstanceOf(QueueUnavailableError);
    });
  });
});

describe('the JSON client signs for SQS itself', () => {
  let server: LoopbackServer;
  let endpoint: string;
  const auth: string[] = [];
  beforeAll(async () => {
    server = await listenLoopback((req, res) => {
      auth.push(String(req.headers.authorization));
      req.resume();
      req.on('end', () => res.writeHead(200).end(JSON.stringify({ Successful: [{ Id: '0' }], Failed: [] })));
    });
    endpoint = server.url;
  });
  afterAll(() => server.close());

  test('each call signed for SQS in the queue region, naming the JSON target', async () => {
    await build('json', { TALLY_QUEUE_URL: `${endpoint}/1/q`, AWS_REGION: 'eu-west-1', TALLY_SQS_ENDPOINT: endpoint }).send([ev(1)]);
    expect(auth.at(-1)).toMatch(/^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/);
  });

  test('AWS_ENDPOINT_URL_SQS (then AWS_ENDPOINT_URL) is honoured, signed with the environment’s credentials; fails closed without them', async () => {
    const saved = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      const viaEnv = build('json', { TALLY_QUEUE_URL: `${endpoint}/1/q`, AWS_ENDPOINT_URL_SQS: endpoint, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' });
      await expect(viaEnv.send([ev(1)])).rejects.toThrow(/no AWS credentials/);
      process.env.AWS_ACCESS_KEY_ID = 'AKIAENV';
      process.env.AWS_SECRET_ACCESS_KEY = 's';
      process.env.AWS_SESSION_TOKEN = 'session';
      await viaEnv.send([ev(2)]);
      expect(auth.at(-1)).toContain('Credential=AKIAENV/');
      expect(auth.at(-1)).toContain('x-amz-security-token');
      await build('json', { TALLY_QUEUE_URL: `${endpoint}/1/q`, AWS_ENDPOINT_URL: endpoint }).send([ev(3)]);
      expect(auth.at(-1)).toContain('Credential=AKIAENV/');
    } finally {
      process.env = saved;
    }
  });
});
