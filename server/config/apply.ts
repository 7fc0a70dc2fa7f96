// What a config change does to a running server, decided before anything changes (Caddy's
// provision-then-swap): which pools start, stop, reload or change live, whether the
// routes change, which limits change and how each reaches the server, and which fields
// the running server cannot take at all ("needs a restart"). Pure: no I/O, no vscode.
//
// Every field is decided once, in the tables below. A field added to LimitsConfig or
// PythonPoolConfig fails the typecheck here until someone says how it applies.
import { parseTree, type JSONPath } from 'jsonc-parser';
import { LineIndex, spanOf } from './positions';
import type { LimitsConfig, ListenConfig, PoolConfig, PythonPoolConfig, ServeConfig } from './types';

/**
 * How a limit reaches the running server:
 * - `request`: read from the route table on every request; live once the routes swap.
 * - `pool`: handed to each pool (the queue bound); live for the next request that would wait.
 * - `connection`: a property of the listener read when a connection is accepted (Node's
 *   `server.maxHeaderSize`); live for new connections, an open keep-alive connection keeps
 *   the limit it was accepted with until it closes.
 * - `listener`: a property of the listener read on every check (Node's `headersTimeout`); live.
 * - `restart`: fixed when the listener is created; reported as needing a restart.
 */
export type LimitApply = 'request' | 'pool' | 'connection' | 'listener' | 'restart';

export const LIMITS: { readonly [K in keyof LimitsConfig]: { readonly field: string; readonly applies: LimitApply } } = {
  maxBodySize: { field: 'maxBodySize', applies: 'request' },
  maxHeaderCount: { field: 'maxHeaderCount', applies: 'request' },
  maxHeaderLineSize: { field: 'maxHeaderLineSize', applies: 'request' },
  bufferSize: { field: 'bufferSize', applies: 'request' },
  maxTempFileSize: { field: 'maxTempFileSize', applies: 'request' },
  queueSize: { field: 'queueSize', applies: 'pool' },
  maxHeaderSize: { field: 'maxHeaderSize', applies: 'connection' },
  headerTimeoutMs: { field: 'headerTimeout', applies: 'listener' },
  maxWebSocketMessageSize: { field: 'maxWebSocketMessageSize', applies: 'pool' },
};

/** Top-level fields only a restart applies: the listener is bound with them. */
export const RESTART_ONLY_FIELDS = ['listen', 'tls', 'httpRedirect'] as const;

/**
 * A Python pool's fields: `reload` ones need fresh workers (a rolling reload, no request
 * fails); `live` ones are read by the arbiter as it goes (workers scale; timeout,
 * maxRequests and the code watcher apply from the next check); `name`/`kind` identify it.
 */
const PYTHON_POOL_FIELDS: { readonly [K in keyof PythonPoolConfig]: 'reload' | 'live' | 'identity' } = {
  kind: 'identity',
  name: 'identity',
  app: 'reload',
  interface: 'reload',
  python: 'reload',
  threads: 'reload',
  env: 'reload',
  envFile: 'reload',
  cwd: 'reload',
  workers: 'live',
  timeoutMs: 'live',
  maxRequests: 'live',
  reload: 'live',
};

export type PoolChange =
  /** A new pool: started at the swap. */
  | { name: string; action: 'start' }
  /** Same name, other kind (Python ⇄ command): the new one starts, the old one drains. */
  | { name: string; action: 'replace' }
  /** Gone from the config: drained after the swap. */
  | { name: string; action: 'stop' }
  /** Fresh workers (a rolling reload), or the command pool's program restarted with its new settings. */
  | { name: string; action: 'reload'; fields: string[] }
  /** Applied in place: no worker restarts. */
  | { name: string; action: 'update'; fields: string[] };

export interface LimitChange {
  key: keyof LimitsConfig;
  /** The name in servestack.json, e.g. "limits.headerTimeout". */
  field: string;
  from: number;
  to: number;
  applies: LimitApply;
}

export interface RestartNeeded {
  /** The name in servestack.json: "listen", "tls", "limits.…". */
  field: string;
  path: JSONPath;
  /** What the server keeps, and what the file asks for, as people read them. */
  running: string;
  wanted: string;
}

export interface ConfigPlan {
  /** Nothing differs: the change is a no-op. */
  unchanged: boolean;
  pools: PoolChange[];
  routesChanged: boolean;
  /** Limits that change live (every kind but `restart`). */
  limits: LimitChange[];
  restartNeeded: RestartNeeded[];
}

export interface RunningFacts {
  /** The port the listener is bound to (an unpinned or 0 port resolves to one). */
  boundPort: number;
}

/** `before` is the config the server runs (its listen as bound), `next` the new one, already checked. */
export function planConfigChange(before: ServeConfig, next: ServeConfig, running: RunningFacts): ConfigPlan {
  const pools = planPools(before.pools, next.pools);
  const routesChanged = !same(before.routes, next.routes);
  const limits: LimitChange[] = [];
  const restartNeeded: RestartNeeded[] = [];
  for (const key of Object.keys(LIMITS) as (keyof LimitsConfig)[]) {
    const from = before.limits[key];
    const to = next.limits[key];
    if (from === to) continue;
    const { field, applies } = LIMITS[key];
    if (applies === 'restart') restartNeeded.push({ field: `limits.${field}`, path: ['limits', field], running: String(from), wanted: String(to) });
    else limits.push({ key, field: `limits.${field}`, from, to, applies });
  }
  if (!listenSatisfied(before.listen, next.listen, running.boundPort)) {
    restartNeeded.unshift({ field: 'listen', path: ['listen'], running: hostPort(before.listen.host, running.boundPort), wanted: describeListen(next.listen) });
  }
  if (!same(before.tls, next.tls)) {
    restartNeeded.push({ field: 'tls', path: ['tls'], running: describeTls(before.tls), wanted: describeTls(next.tls) });
  }
  if (!same(before.httpRedirect, next.httpRedirect)) {
    const shown = (r: ServeConfig['httpRedirect']) => (r ? hostPort(r.host, r.port) : 'no redirect');
    restartNeeded.push({ field: 'httpRedirect', path: ['httpRedirect'], running: shown(before.httpRedirect), wanted: shown(next.httpRedirect) });
  }
  const otherwiseSame = same({ ...before, listen: undefined, tls: undefined, httpRedirect: undefined }, { ...next, listen: undefined, tls: undefined, httpRedirect: undefined });
  return { unchanged: otherwiseSame && restartNeeded.length === 0, pools, routesChanged, limits, restartNeeded };
}

/**
 * The config the server runs once `next` is swapped in: `next`, with the fields that need
 * a restart kept as they run (so the next change is planned against what really runs).
 */
export function runningAfter(before: ServeConfig, next: ServeConfig): ServeConfig {
  const limits = { ...next.limits };
  for (const key of Object.keys(LIMITS) as (keyof LimitsConfig)[]) if (LIMITS[key].applies === 'restart') limits[key] = before.limits[key];
  const { tls: _ignored, httpRedirect: _bound, ...rest } = next;
  return {
    ...rest,
    listen: before.listen,
    ...(before.tls !== undefined ? { tls: before.tls } : {}),
    ...(before.httpRedirect !== undefined ? { httpRedirect: before.httpRedirect } : {}),
    limits,
  };
}

function planPools(before: Record<string, PoolConfig>, next: Record<string, PoolConfig>): PoolChange[] {
  const changes: PoolChange[] = [];
  for (const [name, cfg] of Object.entries(next)) {
    const old = before[name];
    if (!old) changes.push({ name, action: 'start' });
    else if (old.kind !== cfg.kind) changes.push({ name, action: 'replace' });
    else if (old.kind === 'python' && cfg.kind === 'python') {
      const changed = (Object.keys(PYTHON_POOL_FIELDS) as (keyof PythonPoolConfig)[]).filter((k) => !same(old[k], cfg[k]));
      const reload = changed.filter((k) => PYTHON_POOL_FIELDS[k] === 'reload');
      if (reload.length > 0) changes.push({ name, action: 'reload', fields: reload.map(fieldName) });
      else if (changed.length > 0) changes.push({ name, action: 'update', fields: changed.map(fieldName) });
    } else if (!same(old, cfg)) {
      // A command pool runs one program: any change of its settings restarts it.
      const fields = (Object.keys(cfg) as (keyof typeof cfg)[]).filter((k) => !same(old[k as keyof typeof old], cfg[k]));
      changes.push({ name, action: 'reload', fields: fields.map((f) => fieldName(f as string)) });
    }
  }
  for (const name of Object.keys(before)) if (!next[name]) changes.push({ name, action: 'stop' });
  return changes;
}

/** Whether the bound listener is what `next` asks for (a fresh start would bind the same). */
function listenSatisfied(running: ListenConfig, next: ListenConfig, boundPort: number): boolean {
  if (running.host !== next.host) return false;
  if (next.pinned) return next.port === 0 || next.port === boundPort;
  // Unpinned: "this port or the next free one"; a server that moved on the same way still fits.
  return boundPort === next.port || (!running.pinned && running.port === next.port);
}

function fieldName(key: string): string {
  return key === 'timeoutMs' ? 'timeout' : key;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function describeListen(l: ListenConfig): string {
  if (!l.pinned) return `${hostPort(l.host, l.port)} or the next free port`;
  return l.port === 0 ? `${l.host} on any free port` : hostPort(l.host, l.port);
}

function describeTls(tls: ServeConfig['tls']): string {
  if (tls === undefined) return 'no TLS';
  return tls === 'auto' ? '"auto"' : `cert ${tls.cert}`;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** 1-based line and column of the value at `path` in the config text (its key when missing; 1:1 without text). */
export function placeOf(text: string | undefined, path: JSONPath): { line: number; col: number } {
  if (text === undefined) return { line: 1, col: 1 };
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return new LineIndex(body).at(spanOf(parseTree(body, [], { allowTrailingComma: true }), path).offset);
}
