// Turns a raw config (already checked against the schema) into the ServeConfig the rest
// of ServeStack reads: defaults from the schema, units parsed, paths made absolute,
// overrides applied — and the checks a schema cannot make (files exist, names refer to
// something, no duplicates). It reads values defensively: a value of the wrong type has
// already been reported by the schema check and is skipped here, so one fault gives one
// diagnostic. Returns undefined when any error was reported.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { JSONPath } from 'jsonc-parser';
import { findModuleFile, moduleFileCandidates, parseAppTarget } from './appTarget';
import { DEFAULTS } from './defaults';
import { detectApp } from './detect';
import type { DiagnosticList } from './diagnostics';
import { describePath, orList } from './labels';
import { isValidPort, parseListen } from './listen';
import { closest } from './suggest';
import { trustedProxyError } from '../proxy/trustedFront';
import type {
  BalanceConfig,
  CommandPoolConfig,
  CompressionConfig,
  DevConfig,
  InterfaceKind,
  LimitsConfig,
  ListenConfig,
  PoolConfig,
  PythonPoolConfig,
  RouteConfig,
  ServeConfig,
  TlsConfig,
} from './types';
import { parseDuration, parseRate, parseSize, type Parsed } from './units';

export interface ConfigOverrides {
  host?: string;
  /** Pins the port. 0 lets the system choose a free port (for tests and scripts). */
  port?: number;
  /** Sets `workers` of every Python pool. */
  workers?: number;
}

export interface ResolveContext {
  dir: string; // absolute
  file?: string; // absolute config path; undefined when detected
  detected: boolean;
  overrides: ConfigOverrides;
  list: DiagnosticList;
}

/** The context inside one resolve: with the raw config, for messages that name routes by path. */
type Ctx = ResolveContext & { raw: Obj };

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function kindOf(v: unknown): 'file' | 'dir' | undefined {
  try {
    const s = statSync(v as string);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined; // does not exist or cannot be seen: reported as missing by the caller
  }
}

function pick<T>(value: unknown, type: 'number' | 'boolean' | 'string', fallback: T): T {
  return (typeof value === type ? value : fallback) as T;
}

function inFolder(ctx: Ctx, p: string): string {
  return isAbsolute(p) ? p : resolve(ctx.dir, p);
}

/** Parses a unit value (the written one, else the schema default); reports CONFIG_BAD_UNIT at it. */
function unit<T>(ctx: Ctx, parse: (v: unknown) => Parsed<T>, written: unknown, fallback: unknown, path: JSONPath): T | undefined {
  const parsed = parse(written ?? fallback);
  if (parsed.error === undefined) return parsed.value;
  const label = describePath(path, ctx.raw);
  const where = written === undefined ? `the default of ${label}` : label;
  ctx.list.add('CONFIG_BAD_UNIT', `${where}: ${parsed.error}`, path);
  return undefined;
}

/** An existing file named by the config, made absolute; CONFIG_PATH_MISSING when it is not there. */
function existingFile(ctx: Ctx, value: unknown, path: JSONPath, what: string): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const abs = inFolder(ctx, value);
  if (kindOf(abs) !== 'file') {
    ctx.list.add('CONFIG_PATH_MISSING', `${describePath(path, ctx.raw)}: ${what} "${value}" does not exist (looked at ${abs}); fix the path, relative to ${ctx.dir}, or remove the field`, path, {
      data: { path: abs },
    });
  }
  return abs;
}

function resolveListen(raw: Obj, ctx: Ctx): ListenConfig {
  const fallback = parseListen(DEFAULTS.listen);
  if (fallback.error !== undefined || fallback.value.host === undefined) throw new Error(`schema.json: bad default listen (${fallback.error})`);
  const listen: ListenConfig = { host: fallback.value.host, port: fallback.value.port, pinned: false };
  if (raw.listen !== undefined) {
    const parsed = parseListen(raw.listen);
    if (parsed.error !== undefined) ctx.list.add('CONFIG_BAD_PORT', parsed.error, ['listen']);
    else Object.assign(listen, { host: parsed.value.host ?? listen.host, port: parsed.value.port, pinned: true });
  }
  const { host, port } = ctx.overrides;
  if (host !== undefined) {
    if (host === '' || /[\s/]/.test(host)) ctx.list.add('CONFIG_BAD_PORT', `--host "${host}" is not a host name or address; use e.g. 127.0.0.1 or 0.0.0.0`, undefined);
    else listen.host = host;
  }
  if (port !== undefined) {
    if (port === 0 || isValidPort(port)) Object.assign(listen, { port, pinned: true });
    else ctx.list.add('CONFIG_BAD_PORT', `--port ${port} is not a port; use a port from 1 to 65535 (or 0 for any free port)`, undefined);
  }
  return listen;
}

function resolveTls(raw: Obj, ctx: Ctx): TlsConfig | undefined {
  if (raw.tls === 'auto') return 'auto';
  if (!isObject(raw.tls)) return undefined;
  const cert = existingFile(ctx, raw.tls.cert, ['tls', 'cert'], 'the certificate file');
  const key = existingFile(ctx, raw.tls.key, ['tls', 'key'], 'the key file');
  return cert && key ? { cert, key } : undefined;
}

function resolveTrustedProxies(raw: Obj, ctx: Ctx): string[] {
  if (!Array.isArray(raw.trustedProxies)) return [...DEFAULTS.trustedProxies];
  const entries: string[] = [];
  raw.trustedProxies.forEach((entry, i) => {
    if (typeof entry !== 'string') return; // the schema check reports it
    const error = trustedProxyError(entry);
    if (error) ctx.list.add('CONFIG_SCHEMA', `trustedProxies: ${error}`, ['trustedProxies', i]);
    else entries.push(entry);
  });
  return entries;
}

function resolveHttpRedirect(raw: Obj, ctx: Ctx, listen: ListenConfig, tls: TlsConfig | undefined): ServeConfig['httpRedirect'] {
  if (raw.httpRedirect === undefined) return undefined;
  const parsed = parseListen(raw.httpRedirect);
  if (parsed.error !== undefined) {
    ctx.list.add('CONFIG_BAD_PORT', parsed.error.replace('"listen"', '"httpRedirect"'), ['httpRedirect']);
    return undefined;
  }
  if (raw.tls === undefined) {
    ctx.list.add('CONFIG_SCHEMA', '"httpRedirect" sends plain HTTP to HTTPS, and this config serves no HTTPS: add "tls": "auto", or remove "httpRedirect"', ['httpRedirect']);
    return undefined;
  }
  const redirect = { host: parsed.value.host ?? listen.host, port: parsed.value.port };
  if (redirect.port === listen.port && redirect.host === listen.host) {
    ctx.list.add('CONFIG_BAD_PORT', `"httpRedirect" and "listen" are both ${listen.port}; HTTPS and the redirect need a port each (e.g. "httpRedirect": ${listen.port === 8080 ? 8081 : 8080})`, ['httpRedirect']);
    return undefined;
  }
  return tls ? redirect : undefined;
}

function overrideWorkers(ctx: Ctx): number | undefined {
  const { workers } = ctx.overrides;
  if (workers === undefined) return undefined;
  if (Number.isInteger(workers) && workers >= 1) return workers;
  ctx.list.add('CONFIG_SCHEMA', `--workers ${workers} is not a number of workers; use a whole number of at least 1`, undefined);
  return undefined;
}

/** Checks the app target's form and that its module is a file in the folder. */
function checkApp(ctx: Ctx, app: unknown, path: JSONPath, candidates: () => string[]): void {
  const target = parseAppTarget(app);
  if (target.error !== undefined) {
    ctx.list.add('CONFIG_APP_FORMAT', target.error, path, { data: { candidates: candidates() } });
    return;
  }
  if (findModuleFile(ctx.dir, target.value.module)) return;
  const found = candidates();
  const looked = moduleFileCandidates(target.value.module).join(' or ');
  const fix = found.length ? `point "app" at an app found here (${orList(found.slice(0, 3))})` : 'fix "app"';
  ctx.list.add(
    'CONFIG_APP_MODULE_MISSING',
    `module "${target.value.module}" has no file in the folder (looked for ${looked}); ${fix}, or ignore this if the module is installed in the Python environment`,
    path,
    { data: { candidates: found } },
  );
}

function resolvePools(raw: Obj, ctx: Ctx): Record<string, PoolConfig> {
  const pools: Record<string, PoolConfig> = {};
  if (!isObject(raw.pools)) return pools;
  const workersOverride = overrideWorkers(ctx);
  let detected: string[] | undefined; // detection reads files: only when an app target needs it
  const candidates = () => (detected ??= detectApp(ctx.dir).map((c) => c.target));
  for (const [name, pool] of Object.entries(raw.pools)) {
    if (!isObject(pool) || (!('app' in pool) && !('command' in pool))) continue; // reported by the schema check
    const at = (field: string): JSONPath => ['pools', name, field];
    const timeoutMs = unit(ctx, parseDuration, pool.timeout, DEFAULTS.poolTimeout, at('timeout'));
    const env = { ...((isObject(pool.env) ? pool.env : DEFAULTS.env) as Record<string, string>) };
    const envFile = existingFile(ctx, pool.envFile, at('envFile'), 'the env file');
    const common = { name, env, cwd: ctx.dir, timeoutMs: timeoutMs ?? 0, ...(envFile ? { envFile } : {}) };
    // Same choice as the schema check: "app" makes a Python pool, even beside "command".
    if (typeof pool.command === 'string' && !('app' in pool)) {
      pools[name] = { kind: 'command', command: pool.command, ...common } satisfies CommandPoolConfig;
      continue;
    }
    checkApp(ctx, pool.app, at('app'), candidates);
    let python = typeof pool.python === 'string' && pool.python !== '' ? pool.python : undefined;
    // A value with a path separator is a file in (or outside) the folder; a bare name is looked up on PATH.
    if (python && /[\\/]/.test(python)) python = existingFile(ctx, python, at('python'), 'the Python interpreter');
    pools[name] = {
      kind: 'python',
      app: typeof pool.app === 'string' ? pool.app : '',
      interface: pick<InterfaceKind>(pool.interface, 'string', DEFAULTS.pythonPool.interface as InterfaceKind),
      ...(python ? { python } : {}),
      workers: workersOverride ?? pick(pool.workers, 'number', DEFAULTS.pythonPool.workers as number),
      threads: pick(pool.threads, 'number', DEFAULTS.pythonPool.threads as number),
      maxRequests: pick(pool.maxRequests, 'number', DEFAULTS.pythonPool.maxRequests as number),
      reload: pick(pool.reload, 'boolean', DEFAULTS.pythonPool.reload as boolean),
      ...common,
    } satisfies PythonPoolConfig;
  }
  return pools;
}

function resolveRoute(raw: Obj, route: Obj, index: number, ctx: Ctx): RouteConfig | undefined {
  const at = (field: string): JSONPath => ['routes', index, field];
  const base = {
    path: String(route.path),
    index,
    ...(route.maxBodySize !== undefined ? { maxBodySize: unit(ctx, parseSize, route.maxBodySize, undefined, at('maxBodySize')) } : {}),
    ...(route.rateLimit !== undefined ? { rateLimit: unit(ctx, parseRate, route.rateLimit, undefined, at('rateLimit')) } : {}),
    ...(typeof route.requestBuffering === 'boolean' ? { requestBuffering: route.requestBuffering } : {}),
    ...resolveCompress(route.compress, ctx, at('compress')),
  };
  if (typeof route.static === 'string') {
    const root = inFolder(ctx, route.static);
    const kind = kindOf(root);
    if (kind !== 'dir') {
      const problem = kind === 'file' ? 'is a file, not a folder' : 'does not exist';
      ctx.list.add('CONFIG_STATIC_MISSING', `static folder "${route.static}" of ${describePath(['routes', index], raw)} ${problem} (${root}); create it or fix the path, relative to ${ctx.dir}`, at('static'), {
        data: { folder: root },
      });
    }
    return { kind: 'static', root, ...base };
  }
  if (typeof route.pool === 'string') {
    const names = isObject(raw.pools) ? Object.keys(raw.pools) : [];
    if (!names.includes(route.pool)) {
      const suggestion = closest(route.pool, names);
      const fix = names.length === 0
        ? 'no pools are defined; add one under "pools", e.g. "web": { "app": "app:app" }'
        : suggestion
          ? `did you mean "${suggestion}"? (pools: ${orList(names, 'and')})`
          : `use one of ${orList(names)}, or add the pool under "pools"`;
      ctx.list.add('CONFIG_POOL_MISSING', `no pool is named "${route.pool}": ${fix}`, at('pool'), {
        data: { pools: names, ...(suggestion ? { suggestion } : {}) },
      });
    }
    return { kind: 'pool', pool: route.pool, ...base };
  }
  const targets = typeof route.proxy === 'string' ? [route.proxy] : Array.isArray(route.proxy) ? route.proxy.filter((t): t is string => typeof t === 'string') : [];
  if (targets.length > 0) {
    const d = DEFAULTS.route;
    const balance: BalanceConfig = {
      method: route.balance === 'least-conn' ? 'least-conn' : (d.balance as BalanceConfig['method']),
      maxFails: pick(route.maxFails, 'number', d.maxFails as number),
      failTimeoutMs: unit(ctx, parseDuration, route.failTimeout, d.failTimeout, at('failTimeout')) ?? 0,
    };
    return { kind: 'proxy', target: targets[0], targets, balance, ...base };
  }
  for (const field of ['balance', 'maxFails', 'failTimeout']) {
    if (route[field] !== undefined) {
      ctx.list.add('CONFIG_BALANCE_UNUSED', `${describePath(at(field), raw)} only applies to a "proxy" route; remove it`, at(field), { anchor: 'key' });
    }
  }
  return undefined; // none or several of static/pool/proxy: reported by the schema check
}

/** "compress": true or left out → the defaults; false → off; an object → the defaults with its fields. */
function resolveCompress(written: unknown, ctx: Ctx, path: JSONPath): { compress?: CompressionConfig } {
  const value = written ?? DEFAULTS.route.compress;
  if (value === false) return {};
  const options = isObject(value) ? value : {};
  const d = DEFAULTS.compression;
  const types = Array.isArray(options.types) ? options.types.filter((t): t is string => typeof t === 'string') : (d.types as string[]);
  return {
    compress: {
      types,
      minSize: unit(ctx, parseSize, options.minSize, d.minSize, [...path, 'minSize']) ?? 0,
      gzipLevel: pick(options.gzipLevel, 'number', d.gzipLevel as number),
      brotliQuality: pick(options.brotliQuality, 'number', d.brotliQuality as number),
    },
  };
}

function resolveRoutes(raw: Obj, ctx: Ctx): RouteConfig[] {
  if (raw.routes === undefined) {
    // Left out with exactly one pool: everything goes to it (index -1: not in the file).
    const names = isObject(raw.pools) ? Object.keys(raw.pools) : [];
    return names.length === 1 ? [{ kind: 'pool', pool: names[0], path: '/', index: -1, ...resolveCompress(undefined, ctx, []) }] : [];
  }
  if (!Array.isArray(raw.routes)) return [];
  const routes: RouteConfig[] = [];
  const firstIndex = new Map<string, number>();
  raw.routes.forEach((route, index) => {
    if (!isObject(route) || typeof route.path !== 'string') return;
    const first = firstIndex.get(route.path);
    if (first !== undefined) {
      ctx.list.add('CONFIG_DUPLICATE_ROUTE', `route "${route.path}" is already defined at routes[${first}]; remove one or merge them (only the first would ever match)`, ['routes', index, 'path'], {
        data: { firstIndex: first },
      });
    } else firstIndex.set(route.path, index);
    const resolved = resolveRoute(raw, route, index, ctx);
    if (resolved) routes.push(resolved);
  });
  return routes;
}

function reportUnusedPools(raw: Obj, routes: RouteConfig[], ctx: Ctx): void {
  if (!isObject(raw.pools)) return;
  const used = new Set(routes.flatMap((r) => (r.kind === 'pool' ? [r.pool] : [])));
  for (const name of Object.keys(raw.pools)) {
    if (used.has(name)) continue;
    ctx.list.add('CONFIG_POOL_UNUSED', `pool "${name}" is not used by any route, so no request can reach it; add a route such as { "path": "/", "pool": "${name}" } or remove the pool`, ['pools', name], {
      anchor: 'key',
      data: { pool: name },
    });
  }
}

function resolveLimits(raw: Obj, ctx: Ctx): LimitsConfig {
  const written = isObject(raw.limits) ? raw.limits : {};
  const d = DEFAULTS.limits;
  const at = (field: string): JSONPath => ['limits', field];
  return {
    maxBodySize: unit(ctx, parseSize, written.maxBodySize, d.maxBodySize, at('maxBodySize')) ?? 0,
    maxHeaderSize: unit(ctx, parseSize, written.maxHeaderSize, d.maxHeaderSize, at('maxHeaderSize')) ?? 0,
    maxHeaderLineSize: unit(ctx, parseSize, written.maxHeaderLineSize, d.maxHeaderLineSize, at('maxHeaderLineSize')) ?? 0,
    headerTimeoutMs: unit(ctx, parseDuration, written.headerTimeout, d.headerTimeout, at('headerTimeout')) ?? 0,
    queueSize: pick(written.queueSize, 'number', d.queueSize as number),
    maxHeaderCount: pick(written.maxHeaderCount, 'number', d.maxHeaderCount as number),
    bufferSize: unit(ctx, parseSize, written.bufferSize, d.bufferSize, at('bufferSize')) ?? 0,
    maxTempFileSize: unit(ctx, parseSize, written.maxTempFileSize, d.maxTempFileSize, at('maxTempFileSize')) ?? 0,
    maxWebSocketMessageSize: unit(ctx, parseSize, written.maxWebSocketMessageSize, d.maxWebSocketMessageSize, at('maxWebSocketMessageSize')) ?? 0,
  };
}

function resolveDev(raw: Obj, ctx: Ctx): DevConfig {
  const written = isObject(raw.dev) ? raw.dev : {};
  const watch = Array.isArray(written.watch) ? written.watch : (DEFAULTS.dev.watch as string[]);
  return {
    liveReload: pick(written.liveReload, 'boolean', DEFAULTS.dev.liveReload as boolean),
    // A path that does not exist yet is fine: the watcher picks it up once created.
    watch: watch.filter((p): p is string => typeof p === 'string' && p !== '').map((p) => inFolder(ctx, p)),
  };
}

export function resolveConfig(raw: unknown, context: ResolveContext): ServeConfig | undefined {
  if (!isObject(raw)) return undefined; // reported by the schema check
  const ctx: Ctx = { ...context, raw };
  const listen = resolveListen(raw, ctx);
  const tls = resolveTls(raw, ctx);
  const httpRedirect = resolveHttpRedirect(raw, ctx, listen, tls);
  const pools = resolvePools(raw, ctx);
  const routes = resolveRoutes(raw, ctx);
  // Only when nothing is written: a "pools" or "routes" of the wrong type has its own error.
  const noPools = raw.pools === undefined || (isObject(raw.pools) && Object.keys(raw.pools).length === 0);
  const noRoutes = raw.routes === undefined || (Array.isArray(raw.routes) && raw.routes.length === 0);
  if (noPools && noRoutes) {
    ctx.list.add('CONFIG_NO_APP', 'the config serves nothing: add a pool ("pools": { "web": { "app": "app:app" } }) and a route ("routes": [{ "path": "/", "pool": "web" }]), or a static route ("routes": [{ "path": "/", "static": "." }])', Array.isArray(raw.routes) ? ['routes'] : [], { anchor: 'key' });
  }
  reportUnusedPools(raw, routes, ctx);
  const limits = resolveLimits(raw, ctx);
  const trustedProxies = resolveTrustedProxies(raw, ctx);
  const dev = resolveDev(raw, ctx);
  if (ctx.list.hasErrors()) return undefined;
  return {
    dir: ctx.dir,
    ...(ctx.file ? { file: ctx.file } : {}),
    detected: ctx.detected,
    listen,
    ...(tls ? { tls } : {}),
    ...(httpRedirect ? { httpRedirect } : {}),
    pools,
    routes,
    limits,
    ...(typeof raw.name === 'string' ? { name: raw.name } : {}),
    trustedProxies,
    dev,
  };
}
