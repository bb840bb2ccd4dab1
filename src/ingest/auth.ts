/**
 * Where a request's key is in its headers. Checking it — shape, cached lookup, constant-time comparison,
 * scopes, client tokens — is src/projects/auth.ts's (the one check every route makes).
 */

/** The key from `Authorization: Bearer <key>` or `x-api-key`. Header names are lower-case (API Gateway v2). */
export function keyFromHeaders(headers: Record<string, string | undefined>): string | undefined {
  const auth = headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  return headers['x-api-key']?.trim() || undefined;
}
