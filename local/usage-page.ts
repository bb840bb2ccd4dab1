/**
 * The usage page of `npm start` (`GET /` of the local front): one static page (local/usage/, no build
 * step) charting calls over time with uPlot, the top users, and what was last sent to PostHog — all
 * read from tally's own query API with the local key, refreshed live. Local only: the CDK stack has no
 * such routes.
 *
 * Routes: `GET /` (the page), `GET /local/assets/<file>` (its script and styles, and uPlot's files from
 * node_modules), `GET /local/recent` (key required: the last batch events delivered to PostHog and the
 * last sampled raw events).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { keyFromHeaders } from '../src/ingest/auth';
import type { Authenticator } from '../src/projects/auth';
import type { PostHogSink } from '../src/sink/types';
import type { PostHogEvent } from '../src/types';
import { HttpError } from '../src/errors';

/** The local-only route keys (API Gateway style), declared on the local front beside the API's. */
export const USAGE_PAGE_ROUTES = ['GET /', 'GET /local/{proxy+}'] as const;

/** The last events a sink delivered, newest first, at most `limit`. */
export class RecentEvents {
  private readonly items: PostHogEvent[] = [];
  constructor(private readonly limit = 50) {}
  add(events: readonly PostHogEvent[]): void {
    for (const e of events) this.items.unshift(e);
    if (this.items.length > this.limit) this.items.length = this.limit;
  }
  list(): PostHogEvent[] {
    return [...this.items];
  }
}

/** `sink`, remembering what it delivered (and only what it delivered). */
export function recordingSink(sink: PostHogSink, recent: RecentEvents): PostHogSink {
  return {
    send: async (events) => {
      await sink.send(events);
      recent.add(events.filter((e) => e.event.endsWith('_batch')));
    },
    close: sink.close?.bind(sink),
  };
}

const ROOT = resolve(__dirname.includes('.tally') ? join(__dirname, '../..') : join(__dirname, '..'));
const ASSETS: Record<string, { file: string; type: string }> = {
  'usage.js': { file: 'local/usage/usage.js', type: 'text/javascript; charset=utf-8' },
  'usage.css': { file: 'local/usage/usage.css', type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { file: 'node_modules/uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: 'node_modules/uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};
/** The page may load only its own files: no inline script, nothing from elsewhere. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const file = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

export interface UsagePageOptions {
  /** The stack's authenticator: `/local/recent` needs a key that may read usage. */
  auth: Pick<Authenticator, 'authenticate'>;
  recent: RecentEvents;
  /** The last sampled raw events, newest first; unset when sampling goes to a real PostHog. */
  sampled?: () => Array<Record<string, unknown>>;
  sampledNote?: string;
}

export function createUsagePage(o: UsagePageOptions): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event): Promise<APIGatewayProxyStructuredResultV2> => {
    const path = event.rawPath;
    if (path === '/' || path === '/index.html') {
      return { statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP, 'cache-control': 'no-store' }, body: file('local/usage/index.html') };
    }
    const asset = path.startsWith('/local/assets/') ? ASSETS[path.slice('/local/assets/'.length)] : undefined;
    if (asset) {
      const headers: Record<string, string> = { 'content-type': asset.type, 'cache-control': 'no-cache' };
      return { statusCode: 200, headers, body: file(asset.file) };
    }
    if (path === '/local/recent') {
      try {
        await o.auth.authenticate(keyFromHeaders(event.headers ?? {}), 'query');
      } catch (err) {
        const e = err as HttpError;
        return { statusCode: e.statusCode, headers: { 'content-type': 'application/json', ...e.headers }, body: JSON.stringify(e.toBody()) };
      }
      const sampled = o.sampled ? o.sampled().slice(-50).reverse() : [];
      return { statusCode: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify({ batch: o.recent.list(), sampled, sampledNote: o.sampledNote ?? '' }) };
    }
    return { statusCode: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'not_found', message: `no route GET ${path}` }) };
  };
}
