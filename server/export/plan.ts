// What an export decides before any text is written: the port and upstream of each pool,
// the app hosts, each route's upstream kind and buffering, the file names. nginx.ts,
// gunicorn.ts, systemd.ts and readme.ts all read this one plan, so they agree.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { findModuleFile, parseAppTarget } from '../config/appTarget';
import { detectApp } from '../config/detect';
import type { PoolConfig, RouteConfig, ServeConfig } from '../config/types';
import { ServeStackError } from '../errors';
import { nginxRate, requestBuffering, type NginxRate, type UpstreamKind } from './mapping';

export const DEFAULT_APP_PORT = 8000;

export interface HostPort {
  host: string;
  port: number;
}

export interface PoolPlan {
  name: string;
  config: PoolConfig;
  kind: 'wsgi' | 'asgi' | 'command';
  /** How the interface was chosen, when the config said "auto". */
  interfaceFrom?: 'detected' | 'guessed' | 'no-module-file';
  /** The app servers NGINX spreads requests over ("host:port"). */
  servers: string[];
  /** Where this pool's Gunicorn (or command) listens on each app host. */
  bind: string;
  port: number;
  /** gunicorn.conf.py, or gunicorn.<pool>.conf.py when there are several Python pools. */
  gunicornFile?: string;
  unit: string;
}

export interface RoutePlan {
  route: RouteConfig;
  kind: UpstreamKind;
  pool?: PoolPlan;
  buffering: boolean;
  websocket: boolean;
  zone?: string;
  rate?: NginxRate;
}

export interface ExportPlan {
  config: ServeConfig;
  out: string; // absolute
  pools: PoolPlan[];
  routes: RoutePlan[]; // config order
  hosts?: HostPort[];
}

/** "10.0.0.5:8000,10.0.0.6:8000" → hosts; a clear error for anything else. */
export function parseHosts(text: string): HostPort[] {
  const hosts = text.split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) {
      throw new ServeStackError('EXPORT_FAILED', `--hosts: '${item}' is not HOST:PORT`, { hint: 'write app servers as --hosts 10.0.0.5:8000,10.0.0.6:8000' });
    }
    return { host: m[1], port };
  });
  if (hosts.length === 0) throw new ServeStackError('EXPORT_FAILED', '--hosts lists no HOST:PORT', { hint: 'write app servers as --hosts 10.0.0.5:8000,10.0.0.6:8000' });
  return hosts;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/**
 * WSGI or ASGI from the module's source, for a target detection does not list: an
 * `async def NAME(` is ASGI, a `def NAME(environ, start_response)` WSGI, and an object or
 * factory tells by the framework the module imports. undefined when the source does not say.
 */
export function interfaceFromSource(source: string, callable: string): 'wsgi' | 'asgi' | undefined {
  const name = callable.replace(/[^\w]/g, '');
  if (new RegExp(`^\\s*async\\s+def\\s+${name}\\s*\\(`, 'm').test(source)) return 'asgi';
  if (new RegExp(`^\\s*def\\s+${name}\\s*\\(\\s*\\w+\\s*,\\s*\\w+\\s*\\)`, 'm').test(source)) return 'wsgi';
  const asgi = /\b(fastapi|starlette|quart|get_asgi_application|litestar)\b/i.test(source);
  const wsgi = /\b(flask|bottle|falcon|get_wsgi_application|pyramid)\b/i.test(source);
  if (asgi !== wsgi) return asgi ? 'asgi' : 'wsgi';
  return undefined;
}

/** interface "auto": the detected app of the same target says which, else its source; else WSGI, and a warning. */
function poolKind(pool: PoolConfig, dir: string): Pick<PoolPlan, 'kind' | 'interfaceFrom'> {
  if (pool.kind === 'command') return { kind: 'command' };
  if (pool.interface !== 'auto') return { kind: pool.interface };
  const found = detectApp(dir).find((c) => c.target === pool.app);
  if (found && found.interface !== 'auto') return { kind: found.interface, interfaceFrom: 'detected' };
  const target = parseAppTarget(pool.app).value;
  const file = target && findModuleFile(dir, target.module);
  let source = '';
  try {
    source = file ? readFileSync(file, 'utf8') : '';
  } catch {
    // unreadable: guessed below
  }
  const kind = target && interfaceFromSource(source, target.callable);
  if (kind) return { kind, interfaceFrom: 'detected' };
  return { kind: 'wsgi', interfaceFrom: file ? 'guessed' : 'no-module-file' };
}

export function planExport(config: ServeConfig, out: string, hosts?: HostPort[]): ExportPlan {
  const names = Object.keys(config.pools);
  const pythonCount = names.filter((n) => config.pools[n].kind === 'python').length;
  const basePort = hosts?.[0].port ?? DEFAULT_APP_PORT;
  const pools = names.map((name, i): PoolPlan => {
    const pool = config.pools[name];
    const port = basePort + i;
    const kind = poolKind(pool, config.dir);
    // Command pools run beside NGINX; Python pools on every app host.
    const onHosts = pool.kind === 'python' && hosts;
    const servers = onHosts ? hosts.map((h) => `${h.host}:${h.port + i}`) : [`127.0.0.1:${port}`];
    const bindHost = onHosts && !hosts.every((h) => isLoopback(h.host)) ? '0.0.0.0' : '127.0.0.1';
    return {
      name,
      config: pool,
      ...kind,
      servers,
      bind: `${bindHost}:${port}`,
      port,
      ...(pool.kind === 'python' ? { gunicornFile: pythonCount === 1 ? 'gunicorn.conf.py' : `gunicorn.${name}.conf.py` } : {}),
      unit: pool.kind === 'python' ? `servestack-gunicorn-${name}.service` : `servestack-command-${name}.service`,
    };
  });
  const byName = new Map(pools.map((p) => [p.name, p]));
  const routes = config.routes.map((route): RoutePlan => {
    const pool = route.kind === 'pool' ? byName.get(route.pool) : undefined;
    const kind: UpstreamKind = route.kind === 'static' ? 'static' : route.kind === 'proxy' ? 'url' : pool!.kind;
    const zoneIndex = route.index < 0 ? 'default' : String(route.index);
    return {
      route,
      kind,
      ...(pool ? { pool } : {}),
      buffering: requestBuffering(route, kind),
      websocket: kind === 'url' || kind === 'command' || kind === 'asgi',
      ...(route.rateLimit ? { zone: `servestack_route_${zoneIndex}`, rate: nginxRate(route.rateLimit) } : {}),
    };
  });
  return { config, out: path.resolve(out), pools, routes, ...(hosts ? { hosts } : {}) };
}
