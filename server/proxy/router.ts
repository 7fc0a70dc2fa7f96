// Route selection, pure: a path in, the route that serves it out. The rules are NGINX's
// prefix locations, so users can predict the answer without reading this file:
//
// - The longest route path that is a prefix of the request path wins. "/" matches
//   everything; "/static/" matches "/static/x.css" with rest "x.css".
// - Prefixes are compared as plain strings, as NGINX does: "/api" matches "/api",
//   "/api/x" (rest "/x") and also "/apix" (rest "x"). Write "/api/" to match only the
//   folder; then "/api" alone is redirected (next rule).
// - A request for exactly a route path minus its trailing slash ("/static" when
//   "/static/" exists and no route "/static" does) gets a 301 to the slash form. NGINX
//   does this for proxied locations; we do it for every route kind, so a static route
//   behaves the same and "/static" never falls through to the app by accident.
// - Matching is case-sensitive and on the raw (still percent-encoded) path, without the
//   query. The router does not decode or resolve "." / ".." segments: a static handler
//   decodes and confines its own rest, and a pool receives the path as the client sent it.
//   So "/%73tatic/x" does not match "/static/" and goes to a shorter route.
// - Two routes with one path (the config check reports it): the first one defined wins.
import type { RouteConfig } from '../config/types';

export interface RouteMatch {
  route: RouteConfig;
  /** The part of the path after the route prefix, still percent-encoded. "" for a redirect. */
  rest: string;
  /** Set when the client should be sent to this path (301); the caller appends the query. */
  redirect?: string;
}

export interface Router {
  match(pathname: string): RouteMatch | undefined;
  /** The routes in match order (longest first), for views and diagnostics. */
  readonly ordered: readonly RouteConfig[];
}

export function createRouter(routes: readonly RouteConfig[]): Router {
  // Longest first; Array.prototype.sort is stable, so equal paths keep config order.
  const ordered = [...routes].sort((a, b) => b.path.length - a.path.length);
  // Dedup equal paths now so the hot loop never tests a route that can never win.
  const seen = new Set<string>();
  const paths: string[] = [];
  const targets: RouteConfig[] = [];
  for (const route of ordered) {
    if (seen.has(route.path)) continue;
    seen.add(route.path);
    paths.push(route.path);
    targets.push(route);
  }
  // "/static" → the route "/static/", for the missing-slash redirect.
  const slashed = new Map<string, RouteConfig>();
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i];
    if (p.length > 1 && p.endsWith('/')) slashed.set(p.slice(0, -1), targets[i]);
  }

  function match(pathname: string): RouteMatch | undefined {
    for (let i = 0; i < paths.length; i++) {
      const p = paths[i];
      if (pathname.length >= p.length && pathname.startsWith(p)) {
        // An exact route wins over the redirect (NGINX: "/static" and "/static/" both defined).
        if (pathname.length !== p.length) {
          const slashRoute = slashed.get(pathname);
          if (slashRoute) return { route: slashRoute, rest: '', redirect: pathname + '/' };
        }
        return { route: targets[i], rest: pathname.slice(p.length) };
      }
    }
    // No route at all (no "/" route): the redirect may still apply.
    const slashRoute = slashed.get(pathname);
    if (slashRoute) return { route: slashRoute, rest: '', redirect: pathname + '/' };
    return undefined;
  }

  return { match, ordered: targets };
}
