/**
 * Artillery processor for tally's load tests (CommonJS: Artillery `require`s it, locally and on the
 * AWS Lambda workers). Builds realistic request bodies: a few thousand distinct users with Zipf skew
 * (a few heavy API clients, a long tail), a dozen routes, fresh uuids; three shapes:
 *
 *   nativeSingle   POST /v1/usage  {"distinctId","event","properties","uuid"}
 *   nativeBatch    POST /v1/usage  {"batch":[…batchSize events]}
 *   posthogBatch   POST /batch/    {"api_key","batch":[…batchSize PostHog events],"sent_at"}  (posthog-node's shape)
 *
 * Counts what it sent in custom metrics, for the `ensure` checks:
 *   tally.calls_acknowledged  calls in requests answered 2xx
 *   tally.errors              requests answered anything else (also emitted as 0 so the metric exists)
 *
 * The API key comes from `--variables '{"apiKey":"…"}'`, else TALLY_API_KEY, else (local runs)
 * $TALLY_DATA_DIR/local-api-key as `npm start` writes it.
 */
'use strict';
const { randomUUID } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const ROUTES = ['/v1/search', '/v1/items/:id', '/v1/items', '/v1/users/:id', '/v1/orders', '/v1/orders/:id', '/v1/checkout', '/v1/reports', '/v1/export', '/v1/auth/refresh', '/v1/webhooks', '/v1/files/:id'];
const EVENTS = ['api_call', 'api_call', 'api_call', 'search', 'export'];

function zipfSampler(n, s) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / Math.pow(k, s);
  for (let k = 0; k < n; k++) cdf[k] /= sum;
  return () => {
    const u = Math.random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

let samplers;
function sample(context) {
  const users = Number(context.vars.users || 5000);
  if (!samplers || samplers.users !== users) samplers = { users, user: zipfSampler(users, 1.1), route: zipfSampler(ROUTES.length, 1.3) };
  return samplers;
}

function apiKey(context) {
  if (context.vars.apiKey) return String(context.vars.apiKey);
  if (process.env.TALLY_API_KEY) return process.env.TALLY_API_KEY;
  const file = join(process.env.TALLY_DATA_DIR || '.tally', 'local-api-key');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`no API key: pass --variables '{"apiKey":"…"}', set TALLY_API_KEY, or run npm start first (${file})`);
  }
}

function nativeEvent(s) {
  return {
    distinctId: `user-${s.user().toString(36).padStart(4, '0')}`,
    event: EVENTS[Math.floor(Math.random() * EVENTS.length)],
    uuid: randomUUID(),
    properties: { route: ROUTES[s.route()], status: Math.random() < 0.97 ? 200 : 500, duration_ms: Math.round(Math.random() * 120) },
  };
}

function posthogEvent(s) {
  const n = nativeEvent(s);
  return {
    event: n.event,
    distinct_id: n.distinctId,
    uuid: n.uuid,
    timestamp: new Date().toISOString(),
    type: 'capture',
    library: 'posthog-node',
    properties: { ...n.properties, $lib: 'posthog-node', $geoip_disable: true },
  };
}

function setBody(requestParams, context, body, calls) {
  requestParams.body = JSON.stringify(body);
  requestParams.headers = { ...(requestParams.headers || {}), 'content-type': 'application/json' };
  context.vars.calls = calls;
}

module.exports = {
  nativeSingle(requestParams, context, ee, next) {
    const s = sample(context);
    requestParams.headers = { ...(requestParams.headers || {}), authorization: `Bearer ${apiKey(context)}` };
    setBody(requestParams, context, nativeEvent(s), 1);
    return next();
  },
  nativeBatch(requestParams, context, ee, next) {
    const s = sample(context);
    const n = Number(context.vars.batchSize || 100);
    requestParams.headers = { ...(requestParams.headers || {}), 'x-api-key': apiKey(context) };
    setBody(requestParams, context, { batch: Array.from({ length: n }, () => nativeEvent(s)) }, n);
    return next();
  },
  posthogBatch(requestParams, context, ee, next) {
    const s = sample(context);
    const n = Number(context.vars.batchSize || 100);
    setBody(requestParams, context, { api_key: apiKey(context), batch: Array.from({ length: n }, () => posthogEvent(s)), sent_at: new Date().toISOString() }, n);
    return next();
  },
  count(requestParams, response, context, ee, next) {
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    ee.emit('counter', 'tally.errors', ok ? 0 : 1);
    if (ok) ee.emit('counter', 'tally.calls_acknowledged', Number(context.vars.calls || 0));
    return next();
  },
};
