/**
 * CORS, once, as a middy middleware, with the one set of rules for who may call from a browser
 * ({@link OriginRules}): each project's allowed origins (`projects create|update --origins`), plus the
 * deployment-wide list (`TALLY_CORS_ORIGINS`, the stack's `corsOrigins`), which every project allows on
 * top of its own (so a deployment that set it before projects existed keeps working unchanged).
 *
 * Origins change without a deploy, so the functions answer preflights themselves, in every front door:
 * the HTTP API routes `OPTIONS /{proxy+}` to ingest (src/http/route-table.ts) instead of configuring
 * `corsPreflight`, and the Function URL configures none.
 *
 * - Preflight (`OPTIONS`): it carries no credentials, so it cannot say which project it is for: 204 with
 *   the allow headers when *some* project (or the deployment) allows the origin (the union of every
 *   project's origins, read at most every 30 s), without them otherwise (the browser then refuses).
 * - The request itself: once its key or token says which project it is, ingest and query refuse it with
 *   403 `forbidden` (nothing queued) unless that project allows its `Origin` ({@link OriginRules.allowedFor}).
 * - Answers to a request from an origin in the union: `Access-Control-Allow-Origin: <origin>` and
 *   `Vary: Origin`, errors included (so a browser can read why it was refused).
 * - No credentials (cookies) are ever allowed: keys and tokens travel in headers or bodies.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ForbiddenError } from '../errors';

/** Methods browsers may use. */
export const CORS_ALLOW_METHODS = ['GET', 'POST', 'OPTIONS'] as const;
/** Request headers browsers may send: what tally reads, and what PostHog SDKs send. */
export const CORS_ALLOW_HEADERS = ['authorization', 'content-type', 'content-encoding', 'idempotency-key', 'x-api-key'] as const;
/** Answer headers scripts may read. */
export const CORS_EXPOSE_HEADERS = ['retry-after'] as const;
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;
/** How long the union of the projects' origins is kept before it is read again. */
export const CORS_UNION_TTL_MS = 30_000;

/** Who may call from a browser, before the request says which project it is. */
export interface CorsPolicy {
  /** `Access-Control-Allow-Origin` for this origin, or `undefined` when it is not allowed. */
  allows(origin: string): string | undefined | Promise<string | undefined>;
}

export interface OriginRulesOptions {
  /** Every project's allowed origins (`ProjectStore.listProjects`); unset: only the deployment's list. */
  projects?: () => Promise<ReadonlyArray<{ origins: readonly string[] }>>;
  ttlMs?: number;
  now?: () => number;
  /** Told when the projects could not be read (the last union read stays in use). */
  onError?: (err: unknown) => void;
}

/**
 * The deployment-wide origins (exact `scheme://host[:port]`, or `*` for any) and, when given, every
 * project's: the union answers preflights; {@link allowedFor} decides an authenticated request.
 */
export class OriginRules implements CorsPolicy {
  private readonly any: boolean;
  private readonly deployment: ReadonlySet<string>;
  private union: ReadonlySet<string> = new Set();
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    deploymentOrigins: readonly string[],
    private readonly o: OriginRulesOptions = {},
  ) {
    this.any = deploymentOrigins.includes('*');
    this.deployment = new Set(deploymentOrigins.map((x) => x.toLowerCase()));
    this.ttlMs = o.ttlMs ?? CORS_UNION_TTL_MS;
    this.now = o.now ?? Date.now;
  }

  /** For preflights and answer headers: allowed by the deployment or by any project. */
  async allows(origin: string): Promise<string | undefined> {
    if (this.any) return '*';
    const lower = origin.toLowerCase();
    if (this.deployment.has(lower)) return origin;
    if (!this.o.projects) return undefined;
    if (this.now() - this.readAt >= this.ttlMs) await this.refresh();
    return this.union.has(lower) ? origin : undefined;
  }

  /** For a request whose project is known: the deployment's list or the project's own. */
  allowedFor(project: { origins: readonly string[] }, origin: string): boolean {
    if (this.any) return true;
    const lower = origin.toLowerCase();
    return this.deployment.has(lower) || project.origins.some((x) => x.toLowerCase() === lower);
  }

  /**
   * 403 `forbidden` unless the request's project allows its `Origin`. Without an `Origin` header the
   * request is not a browser's cross-origin call (servers, SDKs): nothing to check.
   */
  assertAllowed(project: { id: string; origins: readonly string[] }, origin: string | undefined): void {
    if (origin !== undefined && !this.allowedFor(project, origin)) {
      throw new ForbiddenError(`origin ${origin.slice(0, 200)} is not allowed for project ${project.id} (npm run tally -- projects update ${project.id} --origins …)`);
    }
  }

  private refresh(): Promise<void> {
    this.reading ??= this.o
      .projects!()
      .then(
        (ps) => {
          this.union = new Set(ps.flatMap((p) => p.origins.map((x) => x.toLowerCase())));
          this.readAt = this.now();
        },
        (err: unknown) => {
          // Keep the last union (a preflight only lets the browser ask; each request is checked per
          // project), and try again after a short pause rather than on every preflight.
          this.readAt = this.now() - this.ttlMs + 1000;
          this.o.onError?.(err);
        },
      )
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}

/** Only the deployment-wide list (no projects). */
export function originAllowList(origins: readonly string[]): OriginRules {
  return new OriginRules(origins);
}

type Result = APIGatewayProxyStructuredResultV2;

function withHeaders(res: Result | null | undefined, extra: Record<string, string>): void {
  if (res === undefined || res === null) return;
  res.headers = { ...res.headers, ...extra };
}

/** The middleware; without a policy it does nothing (no answer carries CORS headers). */
export function cors(policy: CorsPolicy | undefined): MiddlewareObj<APIGatewayProxyEventV2, Result> {
  const headersFor = async (origin: string): Promise<Record<string, string> | undefined> => {
    const allowed = await policy!.allows(origin);
    if (allowed === undefined) return undefined;
    return { 'access-control-allow-origin': allowed, vary: 'origin', 'access-control-expose-headers': CORS_EXPOSE_HEADERS.join(',') };
  };
  // Synchronous unless there is an Origin to decide: most requests (servers, SDKs) carry none.
  const after = (request: { event: APIGatewayProxyEventV2; response?: Result | null }): Promise<void> | undefined => {
    const origin = request.event.headers?.origin;
    if (!policy || origin === undefined) return undefined;
    return headersFor(origin).then((h) => {
      if (h) withHeaders(request.response, h);
    });
  };
  const preflight = async (origin: string | undefined): Promise<Result> => {
    const h = origin === undefined ? undefined : await headersFor(origin);
    const answer: Result = { statusCode: 204, headers: { vary: 'origin' }, body: '' };
    if (h) {
      answer.headers = {
        ...h,
        'access-control-allow-methods': CORS_ALLOW_METHODS.join(','),
        'access-control-allow-headers': CORS_ALLOW_HEADERS.join(','),
        'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
      };
    }
    return answer;
  };
  return {
    before: (request) => {
      const e = request.event;
      if (e.requestContext.http.method !== 'OPTIONS' || !policy) return undefined;
      return preflight(e.headers?.origin);
    },
    after,
    onError: after,
  };
}
