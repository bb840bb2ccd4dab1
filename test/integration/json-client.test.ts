/**
 * The SDK-free AWS transport (src/aws/json-client.ts) against scripted HTTP servers: every attempt
 * bounded by the invocation's deadline, no retry that cannot finish, the retry budget, clock-skew
 * correction, and endpoints by partition.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsCallError, AwsJsonClient } from '../../src/aws/json-client';
import { dnsSuffix } from '../../src/aws/endpoints';
import { RetryBudget } from '../../src/aws/retry-budget';
import { DeadlineExceededError, withDeadline } from '../../src/util/deadline';
import { listenLoopback, type LoopbackServer } from '../support/loopback';

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
type Step = (req: IncomingMessage, res: ServerResponse) => void;

let server: LoopbackServer;
let endpoint: string;
let script: Step[] = [];
let seen: IncomingMessage[] = [];
const ok: Step = (_req, res) => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{"ok":true}');
const fail500: Step = (_req, res) => res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end('{"__type":"InternalError"}');
const hang: Step = () => undefined; // accepts the request and never answers

beforeAll(async () => {
  server = await listenLoopback((req, res) => {
    seen.push(req);
    req.resume();
    req.on('end', () => (script.shift() ?? ok)(req, res));
  });
  endpoint = server.url;
});
afterAll(() => server.close());
beforeEach(() => {
  script = [];
  seen = [];
});
afterEach(() => jest.restoreAllMocks());

const client = (o: Partial<ConstructorParameters<typeof AwsJsonClient>[0]> = {}) =>
  new AwsJsonClient({ service: 'sqs', region: 'us-east-1', endpoint, credentials: creds, retryBaseMs: 1, ...o });

describe('bounded by the invocation’s deadline', () => {
  it('a hanging server: each attempt ends at the deadline, and the call rejects by then', async () => {
    script = [hang, hang, hang];
    const c = client({ requestTimeoutMs: 10_000, maxAttempts: 3 });
    const t0 = Date.now();
    const err = await withDeadline(Date.now() + 300, () => c.callWithRetries('AmazonSQS.SendMessageBatch', '{}')).catch((e: unknown) => e);
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(AwsCallError);
    expect((err as AwsCallError).code).toBe('TimeoutError');
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(1500); // the 10 s request timeout never applied
    expect(seen).toHaveLength(1); // no retry could have finished before the deadline
    c.destroy();
  });

  it('past the deadline no attempt starts', async () => {
    const c = client();
    const err = await withDeadline(Date.now() - 1, () => c.callWithRetries('AmazonSQS.SendMessageBatch', '{}')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(seen).toHaveLength(0);
    c.destroy();
  });

  it('a retry whose backoff leaves too little time is not made', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(1); // backoff = the full base
    script = [fail500, ok];
    const c = client({ retryBaseMs: 400, maxAttempts: 3 });
    const err = await withDeadline(Date.now() + 200, () => c.callWithRetries('T', '{}')).catch((e: unknown) => e);
    expect((err as AwsCallError).code).toBe('InternalError');
    expect(seen).toHaveLength(1);
    // The same failure with time to spare is retried and succeeds.
    seen = [];
    script = [fail500, ok];
    await expect(withDeadline(Date.now() + 2000, () => c.callWithRetries('T', '{}'))).resolves.toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    c.destroy();
  });

  it('without a deadline the per-attempt timeout applies, and a timeout is retried', async () => {
    script = [hang, ok];
    const c = client({ requestTimeoutMs: 150, maxAttempts: 2 });
    await expect(c.callWithRetries('T', '{}')).resolves.toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    c.destroy();
  });
});

describe('retry budget (the AWS SDK standard token bucket)', () => {
  it('retries stop when the budget is spent, and successes earn it back', async () => {
    const budget = new RetryBudget({ capacity: 10, retryCost: 5, timeoutRetryCost: 10, successIncrement: 1 });
    const c = client({ maxAttempts: 5, retryBudget: budget });
    script = Array.from({ length: 10 }, () => fail500);
    await expect(c.callWithRetries('T', '{}')).rejects.toThrow(/InternalError/);
    expect(seen).toHaveLength(3); // first try + 2 retries of 5 tokens each
    expect(budget.available).toBe(0);
    seen = [];
    await expect(c.callWithRetries('T', '{}')).rejects.toThrow(/InternalError/);
    expect(seen).toHaveLength(1); // no token left: not retried at all
    script = [];
    for (let i = 0; i < 5; i++) await c.callWithRetries('T', '{}');
    expect(budget.available).toBe(5); // five first-try successes put 1 back each
    seen = [];
    script = [fail500, ok];
    await c.callWithRetries('T', '{}');
    expect(seen).toHaveLength(2);
    expect(budget.available).toBe(5); // the retry's 5 tokens came back with its success
    c.destroy();
  });

  it('is per client: another client’s exhausted budget does not stop this one', async () => {
    const starved = client({ maxAttempts: 3, retryBudget: new RetryBudget({ capacity: 0, retryCost: 5, timeoutRetryCost: 10, successIncrement: 1 }) });
    const fresh = client({ maxAttempts: 3 });
    script = [fail500, fail500, ok];
    await expect(starved.callWithRetries('T', '{}')).rejects.toThrow(/InternalError/);
    await expect(fresh.callWithRetries('T', '{}')).resolves.toEqual({ ok: true });
    expect(seen).toHaveLength(3);
    starved.destroy();
    fresh.destroy();
  });
});

describe('clock skew', () => {
  const serverClockAhead = 2 * 3600_000;
  /** A server two hours ahead of us, refusing signatures more than 5 minutes off its clock. */
  const skewCheck =
    (code: string, message: string): Step =>
    (req, res) => {
      const amz = String(req.headers['x-amz-date']);
      const signed = Date.parse(`${amz.slice(0, 4)}-${amz.slice(4, 6)}-${amz.slice(6, 8)}T${amz.slice(9, 11)}:${amz.slice(11, 13)}:${amz.slice(13, 15)}Z`);
      const serverNow = Date.now() + serverClockAhead;
      if (Math.abs(signed - serverNow) > 300_000) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', date: new Date(serverNow).toUTCString() }).end(JSON.stringify({ __type: code, message }));
      } else ok(req, res);
    };

  it.each([
    ['RequestTimeTooSkewed', 'The difference between the request time and the server time is too large'],
    ['InvalidSignatureException', 'Signature expired: 20261122T173400Z is now earlier than 20261122T192400Z'],
  ])('%s: the offset is taken from the Date header and the call retried once, outside the attempts', async (code, message) => {
    script = [skewCheck(code, message), skewCheck(code, message), skewCheck(code, message)];
    const c = client({ maxAttempts: 1 });
    await expect(c.callWithRetries('T', '{}')).resolves.toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    expect(Math.abs(c.clockOffsetMs - serverClockAhead)).toBeLessThan(5000);
    // Later calls are signed with the corrected clock at once.
    await c.callWithRetries('T', '{}');
    expect(seen).toHaveLength(3);
    c.destroy();
  });

  it('a signature refused for another reason is not retried', async () => {
    script = [(_req, res) => res.writeHead(400, { date: new Date().toUTCString() }).end(JSON.stringify({ __type: 'InvalidSignatureException', message: 'The request signature we calculated does not match' }))];
    const c = client({ maxAttempts: 3 });
    await expect(c.callWithRetries('T', '{}')).rejects.toThrow(/does not match/);
    expect(seen).toHaveLength(1);
    c.destroy();
  });
});

describe('endpoints by partition', () => {
  it('China Regions use amazonaws.com.cn, the others amazonaws.com', () => {
    expect(new AwsJsonClient({ service: 'sqs', region: 'cn-north-1' }).endpoint).toBe('https://sqs.cn-north-1.amazonaws.com.cn/');
    expect(new AwsJsonClient({ service: 'dynamodb', region: 'cn-northwest-1' }).endpoint).toBe('https://dynamodb.cn-northwest-1.amazonaws.com.cn/');
    expect(new AwsJsonClient({ service: 'secretsmanager', region: 'eu-west-1' }).endpoint).toBe('https://secretsmanager.eu-west-1.amazonaws.com/');
    expect(dnsSuffix('us-gov-west-1')).toBe('amazonaws.com');
  });
});
