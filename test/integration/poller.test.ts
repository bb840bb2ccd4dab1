import { createHash } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type Emulator, ensureResources, localAwsClientConfig, type Resources, startDynamo, startSqs } from '../../local/emulators';
import { failedIds, type PollerOptions, SqsPoller } from '../../local/poller';

const region = 'us-east-1';

describe.each(['json', 'sdk'] as const)('SqsPoller (real fauxqs), client=%s', (impl) => {
  let sqs: Emulator;
  let dynamo: Emulator;
  let client: SQSClient;
  const pollers: SqsPoller[] = [];
  let n = 0;

  beforeAll(async () => {
    [sqs, dynamo] = await Promise.all([startSqs({ port: 0, region }), startDynamo({ port: 0 })]);
    client = new SQSClient(localAwsClientConfig(sqs.endpoint, region));
  });
  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    client?.destroy();
    await Promise.all([sqs?.stop(), dynamo?.stop()]);
  });

  /**
   * A fresh queue + DLQ per test. Retry tests use a 1 s visibility timeout; the others use a long one,
   * because a message held in a gathering batch longer than that would come back and join the batch twice
   * (as in AWS, where the visibility timeout must exceed the batching window plus the function timeout).
   */
  const freshQueue = (maxReceiveCount = 3, visibilityTimeoutSeconds = 1): Promise<Resources> => {
    n++;
    return ensureResources({
      dynamoEndpoint: dynamo.endpoint,
      sqsEndpoint: sqs.endpoint,
      region,
      tableName: 'tally-poller-test',
      queueName: `poller-${impl}-${n}`,
      dlqName: `poller-${impl}-${n}-dlq`,
      maxReceiveCount,
      visibilityTimeoutSeconds,
    });
  };
  const send = async (queueUrl: string, bodies: string[]) => {
    for (let i = 0; i < bodies.length; i += 10) {
      await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies.slice(i, i + 10).map((b, j) => ({ Id: String(j), MessageBody: b })),
        }),
      );
    }
  };
  const poller = (q: Resources, opts: Partial<PollerOptions> & Pick<PollerOptions, 'handler'>) => {
    const p = new SqsPoller({ queueUrl: q.queueUrl, endpoint: sqs.endpoint, client: impl, region, onError: () => undefined, ...opts });
    pollers.push(p);
    return p;
  };
  const bodies = (k: number, prefix = 'm') => Array.from({ length: k }, (_, i) => `${prefix}${i}`);

  it('hands over records in the exact Lambda shape', async () => {
    const q = await freshQueue();
    await client.send(
      new SendMessageCommand({
        QueueUrl: q.queueUrl,
        MessageBody: '{"calls":3}',
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'usage' },
          blob: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
        },
      }),
    );
    const events: SQSEvent[] = [];
    const p = poller(q, { maximumBatchingWindowMs: 0, batchSize: 10, handler: async (e) => void events.push(e) });
    await p.start();
    await p.drain(5000);
    expect(events).toHaveLength(1);
    const r: SQSRecord = events[0].Records[0];
    expect(Object.keys(r).sort()).toEqual(
      ['attributes', 'awsRegion', 'body', 'eventSource', 'eventSourceARN', 'md5OfBody', 'md5OfMessageAttributes', 'messageAttributes', 'messageId', 'receiptHandle'].sort(),
    );
    expect(r.body).toBe('{"calls":3}');
    expect(r.md5OfBody).toBe(createHash('md5').update('{"calls":3}').digest('hex'));
    expect(r.eventSource).toBe('aws:sqs');
    expect(r.eventSourceARN).toBe(q.queueArn);
    expect(r.awsRegion).toBe(region);
    expect(r.attributes).toEqual({
      ApproximateReceiveCount: '1',
      SentTimestamp: expect.stringMatching(/^\d{13}$/),
      SenderId: expect.any(String),
      ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d{13}$/),
    });
    expect(r.messageAttributes).toEqual({
      kind: { stringValue: 'usage', stringListValues: [], binaryListValues: [], dataType: 'String' },
      blob: { binaryValue: Buffer.from([1, 2, 3]).toString('base64'), stringListValues: [], binaryListValues: [], dataType: 'Binary' },
    });
    expect(p.stats).toMatchObject({ batches: 1, messages: 1, deleted: 1, failed: 0, errors: 0, inFlight: 0 });
  });

  it('cuts batches at batchSize without waiting for the window', async () => {
    const q = await freshQueue(3, 30);
    await send(q.queueUrl, bodies(25));
    const sizes: number[] = [];
    const at: number[] = [];
    const p = poller(q, {
      batchSize: 10,
      maximumBatchingWindowMs: 20_000,
      concurrency: 1,
      handler: async (e) => {
        sizes.push(e.Records.length);
        at.push(Date.now());
      },
    });
    const t0 = Date.now();
    await p.start();
    // Two full batches done, the last 5 received and waiting for the window to close.
    while (!(p.stats.deleted === 20 && p.stats.held === 5)) await new Promise((r) => setTimeout(r, 20));
    expect(sizes).toEqual([10, 10]);
    expect(at[1] - t0).toBeLessThan(2000); // far inside the 20 s window
    // stop() invokes the gathered messages rather than dropping them.
    await p.stop();
    expect(sizes).toEqual([10, 10, 5]);
    expect(p.stats.deleted).toBe(25);
  });

  it('gathers several ReceiveMessage calls into one batch until the window closes', async () => {
    const q = await freshQueue(3, 30);
    const batches: { size: number; at: number }[] = [];
    const p = poller(q, {
      batchSize: 100,
      maximumBatchingWindowMs: 1000,
      concurrency: 1,
      handler: async (e) => void batches.push({ size: e.Records.length, at: Date.now() }),
    });
    await p.start();
    const t0 = Date.now();
    await send(q.queueUrl, bodies(15, 'a'));
    await new Promise((r) => setTimeout(r, 300));
    await send(q.queueUrl, bodies(12, 'b'));
    await p.drain(5000);
    expect(batches.map((b) => b.size)).toEqual([27]);
    const waited = batches[0].at - t0;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(2500);
  });

  it('deletes what succeeded and lets reported failures come back with ApproximateReceiveCount 2', async () => {
    const q = await freshQueue();
    await send(q.queueUrl, ['ok1', 'bad1', 'ok2', 'bad2']);
    const seen: { body: string; count: string }[] = [];
    const p = poller(q, {
      batchSize: 10,
      maximumBatchingWindowMs: 200,
      concurrency: 1,
      handler: async (e): Promise<SQSBatchResponse> => {
        for (const r of e.Records) seen.push({ body: r.body, count: r.attributes.ApproximateReceiveCount });
        // Fail the "bad" ones on their first delivery only.
        const failures = e.Records.filter((r) => r.body.startsWith('bad') && r.attributes.ApproximateReceiveCount === '1');
        return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    await p.start();
    await p.drain(8000);
    const sorted = (xs: { body: string; count: string }[]) => [...xs].sort((a, b) => (a.body + a.count).localeCompare(b.body + b.count));
    expect(sorted(seen)).toEqual(
      sorted([
        { body: 'ok1', count: '1' },
        { body: 'ok2', count: '1' },
        { body: 'bad1', count: '1' },
        { body: 'bad2', count: '1' },
        { body: 'bad1', count: '2' },
        { body: 'bad2', count: '2' },
      ]),
    );
    expect(p.stats).toMatchObject({ messages: 6, deleted: 4, failed: 2, errors: 0 });
  });

  it('moves a message that keeps failing to the DLQ after maxReceiveCount receives', async () => {
    const q = await freshQueue(2);
    await send(q.queueUrl, ['poison', 'fine']);
    const counts: string[] = [];
    const p = poller(q, {
      batchSize: 10,
      maximumBatchingWindowMs: 100,
      concurrency: 1,
      handler: async (e) => ({
        batchItemFailures: e.Records.filter((r) => r.body === 'poison').map((r) => {
          counts.push(r.attributes.ApproximateReceiveCount);
          return { itemIdentifier: r.messageId };
        }),
      }),
    });
    await p.start();
    await p.drain(10_000); // ends only once SQS has moved the poison message away
    expect(counts).toEqual(['1', '2']);
    const dlq = await client.send(
      new ReceiveMessageCommand({ QueueUrl: q.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
    );
    expect(dlq.Messages?.map((m) => m.Body)).toEqual(['poison']);
    expect(p.stats).toMatchObject({ deleted: 1, failed: 2 });
  });

  it.each([
    ['throws', async () => Promise.reject(new Error('boom'))],
    ['names a message not in the batch', async () => ({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] })],
    ['returns an entry without itemIdentifier', async () => ({ batchItemFailures: [{ id: 'x' }] })],
    ['returns batchItemFailures that is not a list', async () => ({ batchItemFailures: 'all' })],
  ])('deletes nothing when the handler %s', async (_label, firstAnswer) => {
    const q = await freshQueue();
    await send(q.queueUrl, bodies(3));
    const invocations: { ids: string[]; counts: string[] }[] = [];
    const errors: string[] = [];
    const p = poller(q, {
      batchSize: 10,
      maximumBatchingWindowMs: 200,
      concurrency: 1,
      onError: (_err, kind) => errors.push(kind),
      handler: (async (e: SQSEvent) => {
        invocations.push({ ids: e.Records.map((r) => r.messageId).sort(), counts: e.Records.map((r) => r.attributes.ApproximateReceiveCount) });
        if (invocations.length === 1) return firstAnswer();
        return { batchItemFailures: [] };
      }) as PollerOptions['handler'],
    });
    await p.start();
    await p.drain(8000);
    expect(invocations).toHaveLength(2);
    expect(invocations[1].ids).toEqual(invocations[0].ids); // all three came back
    expect(invocations[0].counts).toEqual(['1', '1', '1']);
    expect(invocations[1].counts).toEqual(['2', '2', '2']);
    expect(errors).toEqual([_label === 'throws' ? 'handler' : 'response']);
    expect(p.stats).toMatchObject({ batches: 2, errors: 1, failed: 3, deleted: 3 });
  });

  it('runs batches concurrently and stop() waits for the handler in flight', async () => {
    const q = await freshQueue();
    await send(q.queueUrl, bodies(4));
    let active = 0;
    let maxActive = 0;
    let finished = 0;
    const p = poller(q, {
      batchSize: 2,
      maximumBatchingWindowMs: 0,
      concurrency: 2,
      handler: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 400));
        active--;
        finished++;
      },
    });
    await p.start();
    while (p.stats.inFlight < 2) await new Promise((r) => setTimeout(r, 10));
    await p.stop();
    expect(finished).toBe(2);
    expect(maxActive).toBe(2);
    expect(p.stats).toMatchObject({ deleted: 4, inFlight: 0 });
  });

  it('gives the handler a Lambda-like context', async () => {
    const q = await freshQueue();
    await send(q.queueUrl, ['x']);
    const remaining: number[] = [];
    let name = '';
    const p = poller(q, {
      maximumBatchingWindowMs: 0,
      batchSize: 1,
      timeoutMs: 5000,
      functionName: 'tally-aggregator',
      handler: async (_e, ctx) => {
        name = ctx.functionName;
        remaining.push(ctx.getRemainingTimeInMillis());
        await new Promise((r) => setTimeout(r, 100));
        remaining.push(ctx.getRemainingTimeInMillis());
        expect(ctx.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
      },
    });
    await p.start();
    await p.drain(5000);
    expect(name).toBe('tally-aggregator');
    expect(remaining[0]).toBeLessThanOrEqual(5000);
    expect(remaining[0]).toBeGreaterThan(4800);
    expect(remaining[0] - remaining[1]).toBeGreaterThanOrEqual(90);
  });
});

describe('failedIds (Lambda ReportBatchItemFailures rules)', () => {
  const ids = new Set(['a', 'b']);
  it.each([
    [undefined, []],
    [null, []],
    [{}, []],
    [{ batchItemFailures: null }, []],
    [{ batchItemFailures: [] }, []],
    [{ batchItemFailures: [{ itemIdentifier: 'b' }] }, ['b']],
  ])('%j keeps %j', (response, keep) => {
    expect([...failedIds(response, ids)!]).toEqual(keep);
  });
  it.each([
    ['ok'],
    [[{ itemIdentifier: 'a' }]],
    [{ batchItemFailures: {} }],
    [{ batchItemFailures: [{ itemIdentifier: '' }] }],
    [{ batchItemFailures: [{ itemIdentifier: null }] }],
    [{ batchItemFailures: [{ itemIdentifier: 'c' }] }],
  ])('%j fails the whole batch', (response) => {
    expect(failedIds(response, ids)).toBeUndefined();
  });
});
