/**
 * A message the aggregator cannot process is reported as a batch item failure on every receive and
 * lands in the dead-letter queue after maxReceiveCount receives; the good messages around it are
 * counted exactly once.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { localAwsClientConfig } from '../../local/emulators';
import { NoopSink } from '../../src/sink/print';

const KEY = 'tally_dlq_test_key_123';
let stack: LocalStack;
let sqs: SQSClient;

beforeAll(async () => {
  stack = await startLocalStack({
    port: 0,
    apiKey: KEY,
    sink: new NoopSink(),
    batchSize: 10,
    batchWindowMs: 50,
    visibilityTimeoutSeconds: 1,
    staleSeconds: 0.8,
    graceSeconds: 1.6, // a run commits within 0.8 s: the stale period
    maxReceiveCount: 2,
    rollupIntervalMs: 200,
  });
  sqs = new SQSClient(localAwsClientConfig(stack.sqsEndpoint, 'us-east-1'));
});
afterAll(async () => {
  sqs?.destroy();
  await stack?.stop();
});

async function visibleIn(url: string): Promise<number> {
  const r = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(r.Attributes?.ApproximateNumberOfMessages ?? 0);
}

test('an unprocessable message goes to the DLQ after maxReceiveCount; good ones are counted once', async () => {
  await sqs.send(new SendMessageCommand({ QueueUrl: stack.queueUrl, MessageBody: 'this is not a tally message' }));
  const ok = await fetch(`${stack.url}/v1/usage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ batch: Array.from({ length: 7 }, () => ({ distinctId: 'dlq-user', event: 'dlq_probe' })) }),
  });
  expect(ok.status).toBe(202);

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await visibleIn(stack.dlqUrl)) === 0) await new Promise((r) => setTimeout(r, 200));
  const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.dlqUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
  expect(dead.Messages?.map((m) => m.Body)).toEqual(['this is not a tally message']);
  expect(stack.poller.stats.failed).toBeGreaterThanOrEqual(2);

  await stack.settle(30_000);
  const q = await fetch(`${stack.url}/v1/usage?event=dlq_probe&granularity=day`, { headers: { authorization: `Bearer ${KEY}` } });
  expect(((await q.json()) as { total: number }).total).toBe(7);
});
