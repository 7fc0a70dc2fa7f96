// `servestack import nginx.conf`: a simple NGINX site into a servestack.json. It reads
// listen, root, prefix locations with proxy_pass, alias, root or return, client_max_body_size,
// upstream blocks and limit_req, and every directive `servestack export` writes; anything
// else gets a diagnostic with its line. An export's own gunicorn.conf.py files beside the
// nginx.conf give the pools their app and settings back, so import → export → import is stable.
//
// The tokenizer is small and hand-written: the npm parsers for nginx.conf (nginx-conf)
// edit files through a proxy object API and do not report line numbers.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../config/defaults';
import { detectApp } from '../config/detect';
import { LineIndex } from '../config/positions';
import type { Diagnostic } from '../config/types';
import { parseDuration, parseSize } from '../config/units';
import type { ErrorCode } from '../errors';
import { nginxRate } from './mapping';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

interface Token {
  value: string;
  offset: number;
  quoted: boolean;
}

export interface NginxDirective {
  name: string;
  args: string[];
  offset: number;
  length: number;
  block?: NginxDirective[];
}

export class NginxSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ';' || c === '{' || c === '}') {
      tokens.push({ value: c, offset: i, quoted: false });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i++;
      let value = '';
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) {
          const n = text[i + 1];
          value += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n === c || n === '\\' ? n : `\\${n}`;
          i += 2;
        } else value += text[i++];
      }
      if (i >= text.length) throw new NginxSyntaxError(`unclosed ${c === '"' ? 'double' : 'single'} quote`, start);
      i++;
      tokens.push({ value, offset: start, quoted: true });
    } else {
      const start = i;
      let value = '';
      // A word ends at space, ";" or a brace; "${name}" keeps its braces.
      while (i < text.length && !/[\s;]/.test(text[i])) {
        if (text[i] === '{' && text[i - 1] !== '$') break;
        if (text[i] === '}' && !value.includes('${')) break;
        if (text[i] === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
          continue;
        }
        value += text[i++];
      }
      tokens.push({ value, offset: start, quoted: false });
    }
  }
  return tokens;
}

/** NGINX's syntax as a tree of directives, each with its offset. */
export function parseNginx(text: string): NginxDirective[] {
  const tokens = tokenize(text);
  let at = 0;
  const block = (depth: number, openedAt: number): NginxDirective[] => {
    const list: NginxDirective[] = [];
    while (at < tokens.length) {
      const t = tokens[at];
      if (t.value === '}' && !t.quoted) {
        if (depth === 0) throw new NginxSyntaxError('unexpected "}"', t.offset);
        at++;
        return list;
      }
      if ((t.value === ';' || t.value === '{') && !t.quoted) throw new NginxSyntaxError(`unexpected "${t.value}"`, t.offset);
      const name = t.value;
      const args: string[] = [];
      at++;
      for (;;) {
        const a = tokens[at];
        if (!a) throw new NginxSyntaxError(`directive "${name}" has no ending ";"`, t.offset);
        if (!a.quoted && a.value === ';') {
          list.push({ name, args, offset: t.offset, length: a.offset + 1 - t.offset });
          at++;
          break;
        }
        if (!a.quoted && a.value === '{') {
          at++;
          const children = block(depth + 1, a.offset);
          list.push({ name, args, offset: t.offset, length: name.length, block: children });
          break;
        }
        if (!a.quoted && a.value === '}') throw new NginxSyntaxError(`directive "${name}" has no ending ";"`, t.offset);
        args.push(a.value);
        at++;
      }
    }
    if (depth > 0) throw new NginxSyntaxError('unexpected end of file: a "{" is not closed', openedAt);
    return list;
  };
  return block(0, 0);
}

// Directives that `servestack export` writes and ServeStack already does by itself: read
// without a diagnostic. Anything not here and not mapped below is reported.
const IMPLIED = new Set([
  'worker_processes', 'pid', 'error_log', 'events', 'worker_connections', 'include', 'default_type', 'access_log',
  'client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path', 'sendfile',
  'tcp_nopush', 'tcp_nodelay', 'server_tokens', 'absolute_redirect', 'merge_slashes', 'client_header_buffer_size',
  'proxy_buffering', 'proxy_buffer_size', 'proxy_buffers', 'proxy_busy_buffers_size', 'client_body_timeout', 'send_timeout',
  'keepalive_timeout', 'types', 'server_name', 'index', 'autoindex', 'disable_symlinks', 'etag', 'gzip_static', 'gzip_vary', 'gzip', 'gzip_types', 'gzip_min_length', 'gzip_comp_level', 'gzip_proxied',
  'charset', 'charset_types', 'proxy_http_version', 'proxy_set_header', 'proxy_hide_header', 'proxy_read_timeout',
  'proxy_send_timeout', 'proxy_connect_timeout', 'proxy_next_upstream', 'proxy_next_upstream_tries', 'proxy_ssl_server_name',
  'limit_req_status', 'user', 'keepalive', 'types_hash_max_size', 'types_hash_bucket_size', 'zone', 'ssl_protocols', 'ssl_ciphers', 'ssl_prefer_server_ciphers',
]);
/** Headers the static handler sets itself. */
const IMPLIED_HEADERS = new Set(['cache-control', 'x-content-type-options', 'accept-ranges']);

export interface ImportResult {
  /** The servestack.json text; undefined when the file cannot be read as NGINX syntax. */
  text?: string;
  config?: Record<string, unknown>;
  diagnostics: Diagnostic[];
}

interface GunicornFacts {
  app?: string;
  asgi?: boolean;
  workers?: number;
  threads?: number;
  timeout?: number;
  maxRequests?: number;
}

/** What an exported gunicorn.conf.py says (the settings it writes, one per line). */
function readGunicornConf(file: string, pool: string): GunicornFacts | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  if (!text.includes(`: pool "${pool}" of `)) return undefined; // another pool's, or not an export's
  const setting = (name: string) => new RegExp(`^${name}\\s*=\\s*(.+?)\\s*(#.*)?$`, 'm').exec(text)?.[1];
  const int = (name: string) => {
    const v = setting(name);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const str = (name: string) => {
    const v = setting(name);
    return v && /^(["']).*\1$/.test(v) ? v.slice(1, -1) : undefined;
  };
  return { app: str('wsgi_app'), asgi: /uvicorn/i.test(str('worker_class') ?? ''), workers: int('workers'), threads: int('threads'), timeout: int('timeout'), maxRequests: int('max_requests') };
}

/** The command of an exported command pool's unit (ExecStart=/bin/sh -c "…"). */
function readCommandUnit(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const m = /^ExecStart=\/bin\/sh -c (.*)$/m.exec(readFileSync(file, 'utf8'));
  if (!m) return undefined;
  let command = m[1];
  if (command.startsWith('"') && command.endsWith('"')) command = command.slice(1, -1).replace(/\\(["\\])/g, '$1');
  return command.replace(/\$\$/g, '$').replace(/%%/g, '%');
}

function sizeValue(text: string): string | number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  return /^\d+[kKmMgG]$/.test(text) ? text.toLowerCase() : undefined;
}

function durationValue(text: string): string | number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  return /^\d+(ms|s|m|h)$/.test(text) ? text : undefined;
}

function sameSize(a: string | number, def: unknown): boolean {
  return parseSize(a).value === parseSize(def).value;
}

export function importNginx(text: string, file: string, dir: string): ImportResult {
  const lines = new LineIndex(text);
  const diagnostics: Diagnostic[] = [];
  const report = (code: ErrorCode, d: { offset: number; length: number }, message: string, severity: Diagnostic['severity'] = 'warning') => {
    const start = lines.at(d.offset);
    const end = lines.at(d.offset + d.length);
    diagnostics.push({ file, line: start.line, col: start.col, endLine: end.line, endCol: end.col, offset: d.offset, length: d.length, severity, code, message });
  };
  const unsupported = (d: NginxDirective, why = 'ServeStack has no equivalent; it is not carried over') =>
    report('IMPORT_UNSUPPORTED', d, `"${d.name}${d.args.length ? ' ' + d.args.join(' ') : ''}" ${why}`);

  let tree: NginxDirective[];
  try {
    tree = parseNginx(text);
  } catch (error) {
    if (!(error instanceof NginxSyntaxError)) throw error;
    report('IMPORT_SYNTAX', { offset: error.offset, length: 1 }, `${error.message}; is this an nginx.conf?`, 'error');
    return { diagnostics };
  }

  // The http block, or the file itself when it holds server blocks directly (a sites-available file).
  const http = tree.find((d) => d.name === 'http' && d.block)?.block ?? tree;
  const limits: Record<string, string | number> = {};
  const zones = new Map<string, { count: number; unit: string }>();
  const upstreams = new Map<string, NginxDirective>();
  const servers: NginxDirective[] = [];
  let maxBodySize: string | number = '1m'; // NGINX's default, which this site ran with

  const limit = (d: NginxDirective): boolean => {
    const v = d.args[0] ?? '';
    switch (d.name) {
      case 'client_max_body_size': {
        const size = sizeValue(v);
        if (size === undefined) unsupported(d, 'has a size ServeStack does not read');
        else maxBodySize = size;
        return true;
      }
      case 'client_header_timeout':
      case 'client_body_buffer_size':
      case 'proxy_max_temp_file_size': {
        const key = d.name === 'client_header_timeout' ? 'headerTimeout' : d.name === 'client_body_buffer_size' ? 'bufferSize' : 'maxTempFileSize';
        const value = d.name === 'client_header_timeout' ? durationValue(v) : sizeValue(v);
        if (value === undefined) unsupported(d, 'has a value ServeStack does not read');
        else limits[key] = value;
        return true;
      }
      case 'large_client_header_buffers': {
        const count = Number(d.args[0]);
        const size = parseSize(d.args[1]?.toLowerCase()).value;
        if (!Number.isInteger(count) || size === undefined) unsupported(d, 'has values ServeStack does not read');
        else {
          limits.maxHeaderLineSize = sizeValue(d.args[1])!;
          limits.maxHeaderSize = count * size;
        }
        return true;
      }
    }
    return false;
  };

  for (const d of tree) {
    if (d.name === 'http' || IMPLIED.has(d.name)) continue;
    if (d.name === 'server' || d.name === 'upstream' || d.name === 'limit_req_zone' || d.name === 'map') continue; // read below
    unsupported(d);
  }
  for (const d of http) {
    if (http === tree && (d.name === 'http' || d.name === 'events')) continue;
    if (d.name === 'server' && d.block) servers.push(d);
    else if (d.name === 'upstream' && d.block) upstreams.set(d.args[0], d);
    else if (d.name === 'limit_req_zone') {
      const zone = d.args.find((a) => a.startsWith('zone='))?.slice(5).split(':')[0];
      const rate = /^rate=(\d+)r\/(s|m)$/.exec(d.args.find((a) => a.startsWith('rate=')) ?? '');
      if (!zone || !rate || d.args[0] !== '$binary_remote_addr') unsupported(d, 'is not a per-address rate ServeStack can take');
      else zones.set(zone, { count: Number(rate[1]), unit: rate[2] });
    } else if (d.name === 'map' && d.args[1]?.startsWith('$servestack_')) continue; // an export's own maps
    else if (limit(d)) continue;
    else if (http !== tree && !IMPLIED.has(d.name)) unsupported(d);
  }
  if (servers.length === 0) {
    report('IMPORT_UNSUPPORTED', { offset: 0, length: 0 }, 'no "server" block was found; the servestack.json has no listen or routes from it');
  }
  for (const extra of servers.slice(1)) unsupported(extra, 'is a second server block; only the first is imported (ServeStack serves one listener)');

  const config: Record<string, unknown> = {};
  const pools: Record<string, Record<string, unknown>> = {};
  const routes: Record<string, unknown>[] = [];
  const confDir = path.dirname(file);
  const detected = detectApp(dir);

  const poolFor = (name: string, d: NginxDirective): string => {
    if (pools[name]) return name;
    const up = upstreams.get(name)!;
    for (const s of up.block ?? []) if (s.name !== 'server' && !IMPLIED.has(s.name)) unsupported(s);
    const command = readCommandUnit(path.join(confDir, 'systemd', `servestack-command-${name}.service`));
    if (command !== undefined) {
      pools[name] = { command };
      return name;
    }
    const facts = readGunicornConf(path.join(confDir, `gunicorn.${name}.conf.py`), name) ?? readGunicornConf(path.join(confDir, 'gunicorn.conf.py'), name);
    const pool: Record<string, unknown> = {};
    if (facts?.app) pool.app = facts.app;
    else if (detected[0]) pool.app = detected[0].target;
    else {
      pool.app = 'app:app';
      report('IMPORT_UNSUPPORTED', up, `upstream "${name}": NGINX does not say which app its servers run; the pool runs "app:app": set "app" in servestack.json`);
    }
    const asgi = facts ? facts.asgi : detected.find((c) => c.target === pool.app)?.interface === 'asgi';
    if (asgi) pool.interface = 'asgi';
    const def = DEFAULTS.pythonPool;
    if (facts?.workers !== undefined && facts.workers !== def.workers) pool.workers = facts.workers;
    if (facts?.threads !== undefined && facts.threads !== def.threads) pool.threads = facts.threads;
    if (facts?.timeout !== undefined && facts.timeout * 1000 !== parseDuration(DEFAULTS.poolTimeout).value) pool.timeout = `${facts.timeout}s`;
    if (facts?.maxRequests !== undefined && facts.maxRequests !== def.maxRequests) pool.maxRequests = facts.maxRequests;
    void d;
    pools[name] = pool;
    return name;
  };

  const server = servers[0]?.block ?? [];
  let serverRoot: string | undefined;
  const locations = server.filter((d) => d.name === 'location' && d.block);
  const prefixes = new Set(locations.filter((l) => l.args.length === 1 || l.args[0] === '^~').map((l) => l.args[l.args.length - 1]));
  const relative = (p: string) => {
    const abs = path.resolve(confDir, p);
    const rel = path.relative(dir, abs);
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : rel === '' ? '.' : abs;
  };

  for (const d of server) {
    if (d.name === 'location') continue;
    if (d.name === 'listen') {
      if (config.listen !== undefined) {
        unsupported(d, 'is a second listen; ServeStack serves one address (the first is kept)');
        continue;
      }
      const addr = d.args[0] ?? '';
      if (/^\d+$/.test(addr)) config.listen = Number(addr);
      else config.listen = addr.replace(/^\*:/, '0.0.0.0:');
      if (d.args.includes('ssl')) config.tls = 'auto';
      continue;
    }
    if (d.name === 'root') serverRoot = d.args[0];
    else if (d.name === 'ssl_certificate' || d.name === 'ssl_certificate_key') {
      const tls = typeof config.tls === 'object' ? (config.tls as Record<string, string>) : {};
      tls[d.name === 'ssl_certificate' ? 'cert' : 'key'] = relative(d.args[0]);
      config.tls = tls;
    } else if (d.name === 'error_page' && d.args[d.args.length - 1]?.startsWith('@servestack_')) continue;
    else if (limit(d) || IMPLIED.has(d.name)) continue;
    else unsupported(d);
  }
  if (typeof config.tls === 'object' && !('cert' in (config.tls as object) && 'key' in (config.tls as object))) config.tls = 'auto';

  for (const loc of locations) {
    const [modifier, ...rest] = loc.args;
    const exact = modifier === '=';
    const named = modifier?.startsWith('@');
    if (named && modifier.startsWith('@servestack_')) continue; // an export's error pages
    if (named || modifier === '~' || modifier === '~*') {
      unsupported(loc, 'is a named or regex location; ServeStack routes are path prefixes');
      continue;
    }
    const locPath = exact || modifier === '^~' ? rest[0] : modifier;
    const body = loc.block ?? [];
    const ret = body.find((d) => d.name === 'return');
    if (exact) {
      // The slash redirect ServeStack does by itself: "location = /static { return 301 /static/…; }".
      if (ret && ret.args[0] === '301' && ret.args[1]?.replace(/\$is_args\$args$/, '') === `${locPath}/` && prefixes.has(`${locPath}/`)) continue;
      unsupported(loc, 'is an exact-match location; ServeStack routes are path prefixes');
      continue;
    }
    if (ret) {
      // An export's "no route for /" (return 404) is what ServeStack does without a "/" route.
      if (!(locPath === '/' && ret.args[0] === '404')) unsupported(ret, 'is a return; ServeStack routes serve files, pools or URLs');
      continue;
    }
    const route: Record<string, unknown> = { path: locPath };
    let kind: 'static' | 'pool' | 'proxy' | undefined;
    for (const d of body) {
      switch (d.name) {
        case 'proxy_pass': {
          const url = d.args[0] ?? '';
          const m = /^https?:\/\/([^/:]+)(\/.*)?$/.exec(url);
          if (m && upstreams.has(m[1]) && !m[2]) {
            route.pool = poolFor(m[1], d);
            kind = 'pool';
          } else if (m && upstreams.has(m[1])) {
            unsupported(d, 'passes a path to an upstream; ServeStack pools get the request path as sent');
          } else if (/^https?:\/\//.test(url) && !url.includes('$')) {
            route.proxy = url;
            kind = 'proxy';
          } else unsupported(d, 'is not a URL ServeStack can proxy to');
          break;
        }
        case 'alias':
          route.static = relative(d.args[0]);
          kind = 'static';
          break;
        case 'root':
          route.static = relative(path.join(d.args[0], locPath));
          kind = 'static';
          break;
        case 'client_max_body_size': {
          const size = sizeValue(d.args[0] ?? '');
          if (size === undefined) unsupported(d, 'has a size ServeStack does not read');
          else route.maxBodySize = size;
          break;
        }
        case 'limit_req': {
          const zoneName = d.args.find((a) => a.startsWith('zone='))?.slice(5);
          const zone = zoneName ? zones.get(zoneName) : undefined;
          const burst = Number(d.args.find((a) => a.startsWith('burst='))?.slice(6) ?? 0);
          if (!zone) {
            unsupported(d, 'names a zone with no per-address rate');
            break;
          }
          // ServeStack's bucket holds `count` and refills count per unit: count = burst + 1. The
          // unit is the one whose NGINX rate (as the export writes it) is this zone's.
          const count = burst + 1;
          const written = `${zone.count}r/${zone.unit}`;
          const unit = (['s', 'm', 'h'] as const).find((u) => nginxRate({ count, perMs: UNIT_MS[u] }).rate === written);
          route.rateLimit = unit ? `${count}/${unit}` : `${zone.count}/${zone.unit}`;
          if (!unit) report('IMPORT_UNSUPPORTED', d, `"limit_req" burst ${burst} does not match its rate ${written}; imported as ${route.rateLimit} (ServeStack's burst is the count)`);
          break;
        }
        case 'proxy_request_buffering':
          route.requestBuffering = d.args[0] === 'on';
          break;
        case 'error_page':
          if (!d.args[d.args.length - 1]?.startsWith('@servestack_')) unsupported(d);
          break;
        case 'add_header':
          if (!IMPLIED_HEADERS.has((d.args[0] ?? '').toLowerCase())) unsupported(d);
          break;
        case 'if':
          if (d.args.join(' ') !== '($request_method !~ ^(GET|HEAD)$)') unsupported(d);
          break;
        case 'location':
          // An export's dotfile rule inside a static location; ServeStack never serves dotfiles.
          if (!(d.args[0] === '~' && /\(\.\*\/\)\?\\\.$/.test(d.args[1] ?? ''))) unsupported(d, 'is a nested location; ServeStack routes do not nest');
          break;
        default:
          if (!IMPLIED.has(d.name)) unsupported(d);
      }
    }
    if (!kind) {
      if (serverRoot) {
        route.static = relative(path.join(serverRoot, locPath));
      } else {
        report('IMPORT_UNSUPPORTED', loc, `location ${locPath} has no proxy_pass, alias or root; it is not carried over`);
        continue;
      }
    }
    // requestBuffering only when it differs from the default of the route's kind.
    if (route.requestBuffering !== undefined) {
      const poolName = route.pool as string | undefined;
      const wsgi = kind === 'pool' && pools[poolName!]?.interface !== 'asgi';
      if (route.requestBuffering === wsgi) delete route.requestBuffering;
    }
    routes.push(route);
  }
  if (serverRoot && !routes.some((r) => r.path === '/')) routes.push({ path: '/', static: relative(serverRoot) });

  if (config.listen === undefined && servers.length) config.listen = 80; // NGINX's default listen
  if (Object.keys(pools).length) config.pools = pools;
  config.routes = routes;
  if (!sameSize(maxBodySize, DEFAULTS.limits.maxBodySize)) limits.maxBodySize = maxBodySize;
  for (const key of ['maxHeaderSize', 'maxHeaderLineSize', 'bufferSize', 'maxTempFileSize'] as const) {
    if (limits[key] !== undefined && sameSize(limits[key], DEFAULTS.limits[key])) delete limits[key];
  }
  if (limits.headerTimeout !== undefined && parseDuration(typeof limits.headerTimeout === 'number' ? limits.headerTimeout : limits.headerTimeout).value === parseDuration(DEFAULTS.limits.headerTimeout).value) delete limits.headerTimeout;
  const orderedLimits = Object.fromEntries(['maxBodySize', 'maxHeaderSize', 'maxHeaderLineSize', 'headerTimeout', 'bufferSize', 'maxTempFileSize'].filter((k) => limits[k] !== undefined).map((k) => [k, limits[k]]));
  if (Object.keys(orderedLimits).length) config.limits = orderedLimits;

  const header = `// Imported from ${path.basename(file)} by servestack import.${diagnostics.length ? ` ${diagnostics.length} directive${diagnostics.length === 1 ? ' was' : 's were'} not carried over: servestack import lists ${diagnostics.length === 1 ? 'it' : 'them'} with ${diagnostics.length === 1 ? 'its line' : 'their lines'}.` : ''}\n`;
  return { text: header + JSON.stringify(config, null, 2) + '\n', config, diagnostics };
}

export function importNginxFile(file: string, dir: string): ImportResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return {
      diagnostics: [{ file, line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, length: 0, severity: 'error', code: 'IMPORT_SYNTAX', message: `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give the path of an nginx.conf` }],
    };
  }
  return importNginx(text, file, dir);
}
