// Names for places in the config as people say them in messages: `"workers" of pool
// "web"`, `route "/api/"`, `"limits.queueSize"` — rather than JSON pointers.
import type { JSONPath } from 'jsonc-parser';

function routeName(raw: unknown, index: number): string {
  const route = (raw as { routes?: unknown[] } | undefined)?.routes?.[index] as { path?: unknown } | undefined;
  return typeof route?.path === 'string' ? `route "${route.path}"` : `routes[${index}]`;
}

/** The thing at a path: a pool, a route, a field of one of them, or a dotted field path. */
export function describePath(path: JSONPath, raw: unknown): string {
  if (path.length === 0) return 'the config';
  const [top, second, ...rest] = path;
  let owner: string | undefined;
  if (top === 'pools' && typeof second === 'string') owner = `pool "${second}"`;
  if (top === 'routes' && typeof second === 'number') owner = routeName(raw, second);
  if (owner === undefined || path.length === 1) return `"${path.join('.')}"`;
  if (rest.length === 0) return owner;
  if (rest[0] === 'env' && rest.length === 2) return `env "${rest[1]}" of ${owner}`;
  return `"${rest.join('.')}" of ${owner}`;
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`. */
export function orList(items: readonly string[], word = 'or'): string {
  const q = items.map((s) => JSON.stringify(s));
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} ${word} ${q[q.length - 1]}`;
}
