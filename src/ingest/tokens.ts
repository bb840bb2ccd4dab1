/**
 * `POST /v1/tokens`: a server with a secret key (`ingest` or `admin` scope) mints a short-lived client
 * token for a browser or mobile app (src/projects/tokens.ts): `{"distinctId"?, "ttlSeconds"?}` →
 * `201 {"token", "expiresAt"}`. The token is signed with the project's token secret (derived from the
 * deployment's master secret, `TALLY_TOKEN_SECRET`), scoped to the key's project and, when given, to one
 * distinct id; ingest verifies it in memory. A client token cannot mint another one.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import * as z from 'zod/mini';
import { BadRequestError, ForbiddenError, HttpError } from '../errors';
import type { OriginRules } from '../http/cors';
import { json } from '../http/response';
import type { Authenticator } from '../projects/auth';
import { credentialShape } from '../projects/keys';
import { signToken, TOKEN_TTL } from '../projects/tokens';
import { keyFromHeaders } from './auth';
import { decodeText, parseJson } from './decode';
import { MAX_NAME_LENGTH } from './schema';

/** Largest token request body. */
const MAX_BODY_BYTES = 4096;

export const tokenRequestSchema = z.strictObject(
  {
    distinctId: z.optional(
      z.pipe(
        z.pipe(
          z.union([z.string(), z.number().check(z.refine(Number.isFinite, 'must be a finite number'))], { error: 'must be a string or a number' }),
          z.transform((v: string | number) => (typeof v === 'number' ? String(v) : v)),
        ),
        z.string().check(z.minLength(1, 'must not be empty'), z.maxLength(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`)),
      ),
    ),
    ttlSeconds: z.optional(
      z.number({ error: 'must be a number of seconds' }).check(z.int('must be a whole number of seconds'), z.gte(TOKEN_TTL.min, `must be at least ${TOKEN_TTL.min}`), z.lte(TOKEN_TTL.max, `must be at most ${TOKEN_TTL.max} (15 minutes)`)),
    ),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `unknown field(s): ${(i as { keys?: string[] }).keys?.join(', ')} (expected distinctId, ttlSeconds)` : 'must be a JSON object {"distinctId"?, "ttlSeconds"?}') },
);

export interface TokenRouteDeps {
  auth: Pick<Authenticator, 'authenticate'>;
  cors: OriginRules;
  /** Master secret; unset: the route answers 503 `tokens_unavailable`. */
  tokenSecret?: Buffer;
  now?: () => number;
}

export function createTokenRoute(deps: TokenRouteDeps): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event) => {
    const headers = event.headers ?? {};
    const key = keyFromHeaders(headers);
    if (credentialShape(key) === 'token') throw new ForbiddenError('a client token cannot mint client tokens: call POST /v1/tokens from your server, with a secret key');
    const { project } = await deps.auth.authenticate(key, 'ingest');
    deps.cors.assertAllowed(project, headers.origin);
    const raw = { body: event.body, isBase64Encoded: event.isBase64Encoded };
    const body: unknown = (event.body ?? '').length === 0 ? {} : parseJson(decodeText(raw, MAX_BODY_BYTES));
    const r = z.safeParse(tokenRequestSchema, body);
    if (!r.success) throw new BadRequestError('invalid token request', r.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message })));
    if (!deps.tokenSecret) throw new HttpError('tokens_unavailable', 'client tokens are not configured on this deployment (TALLY_TOKEN_SECRET)');
    const t = signToken(
      { project: project.id, version: project.tokenVersion, ttlSeconds: r.data.ttlSeconds ?? TOKEN_TTL.default, ...(r.data.distinctId !== undefined ? { distinctId: r.data.distinctId } : {}) },
      deps.tokenSecret,
      (deps.now ?? Date.now)(),
    );
    return json(201, { token: t.token, expiresAt: t.expiresAt }, { 'cache-control': 'no-store' });
  };
}
