/**
 * Route tables keyed by `"<METHOD> <path>"`, matched the way PostHog's capture matches them: a trailing
 * slash is ignored. Shared by the ingest routes and the flag routes, so both follow the same rule.
 */
export function routeMatcher<R>(routes: Readonly<Record<string, R>>): (method: string, path: string) => R | undefined {
  return (method, path) => {
    const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    return routes[`${method.toUpperCase()} ${p}`];
  };
}
