// What production will do differently from `servestack serve`, field by field. Each
// warning names the field (as a JSON path, so the editor can underline it) and says what
// NGINX or Gunicorn does instead. The export prints them and writes them into its README;
// the editor shows them as warning diagnostics on servestack.json.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { ErrorCode } from '../errors';
import { readEnvFile } from '../pool/envFile';
import type { ExportPlan } from './plan';

export interface ExportWarning {
  code: ErrorCode;
  /** Where in servestack.json, e.g. ["pools", "web", "reload"]. */
  path: (string | number)[];
  message: string;
  /** A config diagnostic that already reports the cause: the editor shows that one alone. */
  coveredBy?: ErrorCode;
}

const DEBUG_FLAGS = /^(FLASK_DEBUG|DEBUG|DJANGO_DEBUG|UVICORN_RELOAD|PYTHONDEVMODE|WERKZEUG_DEBUG_PIN)$/i;
const TRUTHY = /^(1|true|yes|on)$/i;
const MAX_SCANNED_ENTRIES = 5000;

function field(p: (string | number)[]): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function isSet(raw: unknown, p: string[]): boolean {
  let node = raw;
  for (const key of p) {
    if (typeof node !== 'object' || node === null || !(key in node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
}

/** The first .br file under a static root, looked for in a bounded walk (dot-names skipped, as served). */
function findBrotli(root: string): string | undefined {
  const queue = [root];
  let seen = 0;
  while (queue.length && seen < MAX_SCANNED_ENTRIES) {
    const dir = queue.shift()!;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (++seen > MAX_SCANNED_ENTRIES) break;
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) queue.push(path.join(dir, e.name));
      else if (e.name.endsWith('.br')) return path.join(dir, e.name);
    }
  }
  return undefined;
}

/** `raw` is the config as written (to tell a field set by the user from a default); undefined when detected. */
export function exportWarnings(plan: ExportPlan, raw?: unknown): ExportWarning[] {
  const warnings: ExportWarning[] = [];
  const add = (code: ErrorCode, p: (string | number)[], message: string, coveredBy?: ErrorCode) =>
    warnings.push({ code, path: p, message: `${field(p)}: ${message}`, ...(coveredBy ? { coveredBy } : {}) });
  const { config } = plan;

  if (config.tls === 'auto') {
    add('EXPORT_TLS', ['tls'], 'a generated localhost certificate is no use in production; nginx.conf has placeholders for a real one (see the README: certbot)');
  }
  if (config.httpRedirect) {
    add('EXPORT_TLS', ['httpRedirect'], 'nginx.conf does not redirect plain HTTP: add a server block with `listen 80;` and `return 308 https://$host$request_uri;` (certbot --nginx can add it)');
  }

  for (const pool of plan.pools) {
    const at = (...rest: (string | number)[]) => ['pools', pool.name, ...rest];
    const cfg = pool.config;
    if (cfg.kind === 'python') {
      if (cfg.reload) {
        add('EXPORT_RELOAD', at('reload'), `production does not restart on file saves: Gunicorn runs with reload = False; a deploy restarts it (systemctl reload ${pool.unit})`);
      }
      if (cfg.timeoutMs === 0) {
        add('EXPORT_NO_TIMEOUT', at('timeout'), 'no timeout: Gunicorn runs with timeout = 0, but NGINX needs one, so it gives up after 24h (proxy_read_timeout 86400s)');
      }
      if (pool.interfaceFrom === 'guessed' || pool.interfaceFrom === 'no-module-file') {
        const why = pool.interfaceFrom === 'guessed' ? 'the export could not tell from the code' : 'its module has no file in the folder, so the export could not tell';
        add('EXPORT_INTERFACE', at('app'), `interface "auto": ${why} whether ${cfg.app} is WSGI or ASGI and wrote a WSGI worker class; set "interface" to "asgi" for an ASGI app`,
          pool.interfaceFrom === 'no-module-file' ? 'CONFIG_APP_MODULE_MISSING' : undefined);
      }
    }
    for (const [key, value] of Object.entries(cfg.env)) {
      if (DEBUG_FLAGS.test(key) && TRUTHY.test(value)) {
        add('EXPORT_DEBUG', at('env', key), `${key}=${value} is exported as is, so production would run in debug mode; keep it out of env (an envFile used only in development)`);
      }
    }
    if (cfg.envFile) {
      const fromFile = readEnvFile(cfg.envFile, () => undefined);
      const flag = Object.entries(fromFile).find(([k, v]) => DEBUG_FLAGS.test(k) && TRUTHY.test(v) && !(k in cfg.env));
      if (flag) add('EXPORT_DEBUG', at('envFile'), `${path.basename(cfg.envFile)} sets ${flag[0]}=${flag[1]}, and gunicorn.conf.py reads that file, so production would run in debug mode; give production its own env file`);
    }
  }

  for (const r of plan.routes) {
    const at = (...rest: (string | number)[]) => ['routes', r.route.index, ...rest];
    if (r.route.index < 0) continue; // the implied route has nothing to point at
    if (r.rate && r.route.rateLimit) {
      const approx = r.rate.exact ? '' : `; NGINX rates are per second or minute, so it enforces ${r.rate.rate} (burst ${r.rate.burst})`;
      add('EXPORT_RATE_LIMIT', at('rateLimit'), `NGINX counts it per NGINX host (limit_req_zone ${r.zone}), each host on its own, and its 429 carries a fixed Retry-After${approx}`);
    }
    if (r.route.kind === 'static') {
      const br = findBrotli(r.route.root);
      if (br) add('EXPORT_PRECOMPRESSED', at('static'), `${path.relative(config.dir, br)} and other .br files are not served by NGINX without the ngx_brotli module; it serves the .gz siblings (gzip_static) or the file itself`);
    }
    if (r.kind === 'asgi') {
      add('EXPORT_WEBSOCKET', at('pool'), 'WebSockets reach the app in both, but Uvicorn also pings idle sockets (every 20 s, closing those that do not answer) and, when Gunicorn restarts its worker, closes them with 1012 where ServeStack drains them for the pool\'s timeout and closes with 1001');
    }
  }

  if (isSet(raw, ['limits', 'maxHeaderCount'])) {
    const uncounted = plan.routes.filter((r) => r.kind !== 'wsgi').map((r) => r.route.path);
    if (uncounted.length) {
      add('EXPORT_HEADER_COUNT', ['limits', 'maxHeaderCount'], `NGINX has no header count limit; Gunicorn enforces it (limit_request_fields, answering 400) for WSGI pools only, so ${uncounted.join(', ')} get no count limit in production`);
    }
  }
  if (isSet(raw, ['limits', 'queueSize'])) {
    add('EXPORT_QUEUE_SIZE', ['limits', 'queueSize'], 'open-source NGINX has no upstream queue: requests past it wait in Gunicorn\'s listen backlog (2048) instead of getting 503');
  }
  return warnings;
}
