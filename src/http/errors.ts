/**
 * middy middleware: an {@link HttpError} becomes its JSON answer; anything else is logged and
 * becomes a 500 that names nothing internal. `onReject` lets the handler count rejections by reason.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { HttpError } from '../errors';
import { json } from './response';

export interface HttpErrorsOptions {
  logger?: Pick<Logger, 'warn' | 'error'>;
  onReject?: (err: HttpError) => void;
}

export function httpErrors(opts: HttpErrorsOptions = {}): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    onError: async (request) => {
      const err = request.error;
      if (err instanceof HttpError) {
        opts.onReject?.(err);
        if (err.statusCode >= 500) opts.logger?.error(err.message, { code: err.code });
        else opts.logger?.warn(err.message, { code: err.code, status: err.statusCode });
        request.response = json(err.statusCode, err.toBody(), err.headers);
        return;
      }
      opts.logger?.error('unhandled error', { error: err });
      request.response = json(500, { error: 'internal_error', message: 'internal error; nothing was accepted' });
    },
  };
}
