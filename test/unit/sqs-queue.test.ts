/**
 * Error paths of the SDK queue (`TALLY_AWS_CLIENT=sdk`) with the SDK mocked (aws-sdk-client-mock): the 2xx
 * guarantee. The same semantics over the real wire, for both implementations: test/integration/sqs-queue.test.ts.
 */
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { BadRequestError, QueueUnavailableError } from '../../src/errors';
import { SqsSdkQueue } from '../../src/queue/sqs-sdk';
import type { QueuedEvent } from '../../src/types';

const sqs = mockClient(SQSClient);
const ev = (i: number): QueuedEvent => ({ uuid: `u-${i}`, event: 'e', distinct_id: 'd', properties: { pad: 'x'.repeat(200) }, timestamp: 't', received_at: 0 });
const queue = () => new SqsSdkQueue(new SQSClient({ region: 'us-east-1' }), { queueUrl: 'https://sqs.us-east-1.amazonaws.com/1/q', maxMessageBytes: 4096, entryRetryBaseMs: 1 });

beforeEach(() => sqs.reset());

test('retries only the entries SQS reports as failed, then succeeds', async () => {
  sqs
    .on(SendMessageBatchCommand)
    .callsFakeOnce((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.filter((e) => e.Id !== '1').map((e) => ({ Id: e.Id })),
      Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }],
    }))
    .callsFake((input: { Entries: { Id: string }[] }) => ({ Successful: input.Entries.map((e) => ({ Id: e.Id })), Failed: [] }));
  const r = await queue().send(Array.from({ length: 30 }, (_, i) => ev(i)));
  const calls = sqs.commandCalls(SendMessageBatchCommand);
  expect(calls).toHaveLength(2);
  expect(r.messages).toBe(calls[0]!.args[0].input.Entries!.length);
  expect(r.messages).toBeGreaterThan(1);
  expect(calls[1]!.args[0].input.Entries).toHaveLength(1);
  expect(calls[1]!.args[0].input.Entries![0]!.MessageBody).toBe(calls[0]!.args[0].input.Entries![1]!.MessageBody);
});

test('rejects with 503 when entries keep failing', async () => {
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] });
  await expect(queue().send([ev(1)])).rejects.toBeInstanceOf(QueueUnavailableError);
  expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(3); // first try + 2 retries
});

test('a sender fault is a 400 naming the reason, not retried (a retry could never succeed)', async () => {
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [{ Id: '0', Code: 'InvalidMessageContents', SenderFault: true, Message: 'Invalid characters' }] });
  const err = await queue().send([ev(1)]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BadRequestError);
  expect((err as BadRequestError).statusCode).toBe(400);
  expect((err as Error).message).toContain('InvalidMessageContents: Invalid characters');
  expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
});

test('rejects with 503 when SQS is unreachable', async () => {
  sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' }));
  await expect(queue().send([ev(1)])).rejects.toThrow(/queue unavailable \(TimeoutError\)/);
});
