/** An API Gateway HTTP API (payload 2.0) event for handler tests and benchmarks. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export interface ApiEventInput {
  method?: string;
  path: string;
  /** A Buffer is sent base64-encoded, as API Gateway does for binary bodies. */
  body?: string | Buffer;
  headers?: Record<string, string>;
  sourceIp?: string;
}

export function apiEvent({ method = 'POST', path, body, headers = {}, sourceIp = '198.51.100.7' }: ApiEventInput): APIGatewayProxyEventV2 {
  const binary = Buffer.isBuffer(body);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...headers },
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp, userAgent: 'test' },
      requestId: 'r',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: 0,
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
    },
    body: binary ? body.toString('base64') : body,
    isBase64Encoded: binary,
  };
}
