/**
 * The error table (src/errors.ts) and the one HTTP handler wrapper (src/http/handler.ts): every code's
 * status and metric come from the table; Powertools puts the request id in log lines; an invocation
 * that adds no metric writes no EMF line (and no "no metrics" warning), one that does writes one.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { BadRequestError, ERROR_CODES, HttpError, NotFoundError, PayloadTooLargeError, QueueUnavailableError, UnauthorizedError } from '../../src/errors';
import { countError } from '../../src/http/errors';
import { httpHandler } from '../../src/http/handler';
import { invocationDeadline } from '../../src/util/deadline';
import { json } from '../../src/http/response';
import { createMetrics, METRICS } from '../../src/observability';
import { remainingMs } from '../../src/util/deadline';
import { apiEvent } from '../support/api-event';

const context = { functionName: 'tally-test-ingest', awsRequestId: 'req-1234', getRemainingTimeInMillis: () => 5000, memoryLimitInMB: '512', invokedFunctionArn: 'arn:aws:lambda:us-east-1:0:function:x' } as unknown as Context;

/** stdout and stderr lines written while `fn` runs. */
async function stdoutOf(fn: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  const spies = [jest.spyOn(process.stdout, 'write').mockImplementation(capture), jest.spyOn(process.stderr, 'write').mockImplementation(capture)];
  try {
    await fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return lines;
}

describe('the error table', () => {
  it.each([
    [new BadRequestError('x'), 400, 'invalid_request'],
    [new UnauthorizedError(), 401, 'unauthorized'],
    [new NotFoundError(), 404, 'not_found'],
    [new PayloadTooLargeError(10), 413, 'payload_too_large'],
    [new QueueUnavailableError(), 503, 'queue_unavailable'],
    [new HttpError('body_altered_in_transit', 'x'), 400, 'body_altered_in_transit'],
    [new HttpError('posthog_timeout', 'x'), 504, 'posthog_timeout'],
  ])('%p answers its table status', (err, status, code) => {
    expect(err.statusCode).toBe(status);
    expect(err.code).toBe(code);
    expect(ERROR_CODES[err.code].status).toBe(status);
  });

  it('counts each code in its metric: client errors by reason, the others plainly, internal errors not at all', () => {
    const plain: string[] = [];
    const byReason: Array<[string, string]> = [];
    const metrics = {
      addMetric: (name: string) => void plain.push(name),
      singleMetric: () => {
        let reason = '';
        return { addDimension: (_: string, v: string) => void (reason = v), addMetric: (name: string) => void byReason.push([name, reason]) };
      },
    } as never;
    for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) countError(metrics, new HttpError(code, 'x'));
    expect(byReason).toEqual([
      [METRICS.RequestsRejected, 'invalid_request'],
      [METRICS.RequestsRejected, 'unauthorized'],
      [METRICS.RequestsRejected, 'token_expired'],
      [METRICS.RequestsRejected, 'forbidden'],
      [METRICS.RequestsRejected, 'rate_limited'],
      [METRICS.RequestsRejected, 'quota_exceeded'],
      [METRICS.RequestsRejected, 'not_found'],
      [METRICS.RequestsRejected, 'payload_too_large'],
    ]);
    expect(plain).toEqual([METRICS.BodiesAlteredInTransit, METRICS.AuthUnavailable, METRICS.QueueSendFailures, METRICS.FlagProxyFailures, METRICS.FlagProxyFailures, METRICS.FlagProxyFailures]);
  });
});

describe('httpHandler', () => {
  const env = { ...process.env };
  afterEach(() => {
    process.env = { ...env };
  });

  it('logs with the request id, and an answer without metrics writes no EMF line and no warning', async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    const logger = new Logger({ serviceName: 'test', logLevel: 'INFO' });
    const metrics = createMetrics('test', logger);
    const h = httpHandler(
      async () => {
        logger.info('inside');
        return json(200, { ok: true });
      },
      { logger, metrics, answerReserveMs: 1000 },
    );
    const lines = await stdoutOf(() => h(apiEvent({ method: 'GET', path: '/x' }), context));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ message: 'inside', function_request_id: 'req-1234', cold_start: expect.any(Boolean) });
  });

  it('a rejection is answered from the table, logged once and counted in one EMF line', async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    const logger = new Logger({ serviceName: 'test', logLevel: 'INFO' });
    const metrics = createMetrics('test', logger);
    const h = httpHandler(
      async () => {
        throw new UnauthorizedError('unknown API key');
      },
      { logger, metrics, answerReserveMs: 1000 },
    );
    let status = 0;
    const lines = await stdoutOf(async () => {
      status = (await h(apiEvent({ path: '/v1/usage' }), context)).statusCode!;
    });
    expect(status).toBe(401);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const emf = parsed.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ reason: 'unauthorized', [METRICS.RequestsRejected]: 1 });
    expect(parsed.filter((l) => l.level === 'WARN')).toEqual([expect.objectContaining({ message: 'unknown API key', function_request_id: 'req-1234' })]);
  });

  it('runs the work under the invocation deadline: remaining time minus the answer reserve', async () => {
    let seen = 0;
    const h = httpHandler(
      async () => {
        seen = remainingMs();
        return json(200, {});
      },
      { answerReserveMs: 1000 },
    );
    await h(apiEvent({ path: '/x' }), context);
    expect(seen).toBeGreaterThan(3900);
    expect(seen).toBeLessThanOrEqual(4000);
    expect(invocationDeadline(undefined, 1000)).toBe(Infinity);
  });
});
