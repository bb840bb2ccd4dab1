/**
 * middy middleware: an {@link HttpError} becomes its JSON answer, counted in the metric its code has in
 * {@link ERROR_CODES} (src/errors.ts, the one table of codes, statuses and metrics); anything else is
 * logged and becomes a 500 that names nothing internal.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ERROR_CODES, HttpError } from '../errors';
import { METRICS, MetricUnit } from '../observability';
import { json } from './response';

export interface HttpErrorsOptions {
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** Where rejections are counted (EMF, flushed by Powertools' logMetrics middleware). */
  metrics?: Pick<Metrics, 'addMetric' | 'singleMetric'>;
}

/** Counts one error in the metric {@link ERROR_CODES} gives its code (none for `internal_error`). */
export function countError(metrics: HttpErrorsOptions['metrics'], err: HttpError): void {
  if (!metrics) return;
  const spec = ERROR_CODES[err.code];
  if (!('metric' in spec)) return;
  if ('byReason' in spec && spec.byReason) {
    const m = metrics.singleMetric();
    m.addDimension('reason', err.code);
    m.addMetric(METRICS[spec.metric], MetricUnit.Count, 1);
  } else {
    metrics.addMetric(METRICS[spec.metric], MetricUnit.Count, 1);
  }
}

export function httpErrors(opts: HttpErrorsOptions = {}): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    onError: async (request) => {
      const err = request.error;
      if (err instanceof HttpError) {
        countError(opts.metrics, err);
        if (err.statusCode >= 500) opts.logger?.error(err.message, { code: err.code });
        else opts.logger?.warn(err.message, { code: err.code, status: err.statusCode });
        request.response = json(err.statusCode, err.toBody(), err.headers);
        return;
      }
      opts.logger?.error('unhandled error', { error: err });
      request.response = json(ERROR_CODES.internal_error.status, { error: 'internal_error', message: 'internal error; nothing was accepted' });
    },
  };
}
