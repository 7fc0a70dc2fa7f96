// How each servestack.json field becomes an NGINX directive or a Gunicorn setting: the one
// place to adjust a mapping. Generators (nginx.ts, gunicorn.ts) take their values from the
// functions here, and the exported README prints FIELD_MAP, so a changed mapping shows in
// both. A unit test fails when a schema field has no row in FIELD_MAP.
import type { BalanceConfig, CompressionConfig, LimitsConfig, PoolConfig, PythonPoolConfig, RouteConfig } from '../config/types';
import { isCompressibleType } from '../proxy/compress';

const KiB = 1024;
const MiB = 1024 * KiB;

/** An NGINX size: the largest unit that divides it exactly ("16k", "100m"), else bytes. NGINX sizes know k and m only. */
export function nginxSize(bytes: number): string {
  if (bytes > 0 && bytes % MiB === 0) return `${bytes / MiB}m`;
  if (bytes > 0 && bytes % KiB === 0) return `${bytes / KiB}k`;
  return String(bytes);
}

/** An NGINX time: seconds when whole, else milliseconds. */
export function nginxTime(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Whole seconds for Gunicorn, which takes integers; a fraction rounds up (never shorter). */
export function gunicornSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

export interface Directive {
  name: string;
  value: string;
  /** Where the value comes from, written as a comment beside it. */
  from: string;
}

// ServeStack's own constants that have no field but must be written out to behave the same.
export const KEEPALIVE_TIMEOUT = '65s'; // ProxyServer's keepAliveTimeout
export const URL_ROUTE_READ_TIMEOUT_MS = 60_000; // forwardToUrl's upstream timeout
export const CONNECT_TIMEOUT = '5s';
/**
 * How much longer NGINX waits than the pool's timeout, so Gunicorn's own timeout acts first
 * (its arbiter checks workers about once a second, later on a busy host).
 */
export const READ_TIMEOUT_MARGIN_MS = 5000;
/** With "timeout": 0 ServeStack waits forever; NGINX needs a number. */
export const NO_TIMEOUT_READ_MS = 24 * 3600 * 1000;
export const SHUTDOWN_GRACE_S = 10; // main.ts SHUTDOWN_GRACE_MS
export const GUNICORN_KEEPALIVE_S = 75; // longer than NGINX's upstream keepalive_timeout (60s)

/**
 * limits.maxHeaderLineSize and maxHeaderSize are NGINX's own model: each line (the request
 * line, one header field) must fit one large buffer, the whole head all of them, so
 * `large_client_header_buffers ceil(maxHeaderSize / maxHeaderLineSize) maxHeaderLineSize`
 * (the defaults give NGINX's default, `4 8k`).
 */
export function headerBufferDirectives(limits: LimitsConfig): Directive[] {
  const line = limits.maxHeaderLineSize;
  const count = Math.max(1, Math.ceil(limits.maxHeaderSize / line));
  return [
    { name: 'client_header_buffer_size', value: nginxSize(Math.min(KiB, line)), from: 'NGINX\'s default first buffer; longer heads move to the large ones' },
    { name: 'large_client_header_buffers', value: `${count} ${nginxSize(line)}`, from: 'limits.maxHeaderLineSize (one line per buffer) and limits.maxHeaderSize (all of them)' },
  ];
}

/**
 * limits.bufferSize: NGINX holds a response in proxy_buffers (number × size) plus
 * proxy_buffer_size for its head; 8 buffers of an eighth each, at least 4 of 4k.
 */
export function responseBufferDirectives(limits: LimitsConfig): Directive[] {
  const one = Math.max(4 * KiB, Math.floor(limits.bufferSize / 8 / KiB) * KiB);
  const count = Math.max(4, Math.floor(limits.bufferSize / one));
  return [
    { name: 'proxy_buffering', value: 'on', from: 'ServeStack always buffers responses, so a slow client never holds a worker' },
    { name: 'proxy_buffer_size', value: nginxSize(one), from: 'limits.bufferSize / 8 (the response head)' },
    { name: 'proxy_buffers', value: `${count} ${nginxSize(one)}`, from: 'limits.bufferSize' },
    { name: 'proxy_busy_buffers_size', value: nginxSize(2 * one), from: 'two buffers may be sending to the client' },
    { name: 'proxy_max_temp_file_size', value: nginxSize(limits.maxTempFileSize), from: 'limits.maxTempFileSize (0: no temp file)' },
  ];
}

/** The http-level limits, in the order nginx.conf lists them. */
export function limitDirectives(limits: LimitsConfig): Directive[] {
  return [
    { name: 'client_max_body_size', value: nginxSize(limits.maxBodySize), from: 'limits.maxBodySize (0: no limit, as in ServeStack)' },
    { name: 'client_body_buffer_size', value: nginxSize(limits.bufferSize), from: 'limits.bufferSize (past it the body goes to a temp file)' },
    { name: 'client_header_timeout', value: nginxTime(limits.headerTimeoutMs), from: 'limits.headerTimeout' },
    ...headerBufferDirectives(limits),
    ...responseBufferDirectives(limits),
    { name: 'client_body_timeout', value: '60s', from: 'no field: ServeStack has no body timeout; the NGINX default, written out' },
    { name: 'send_timeout', value: '60s', from: 'no field: the NGINX default, written out' },
    { name: 'keepalive_timeout', value: KEEPALIVE_TIMEOUT, from: "ServeStack's keep-alive timeout" },
  ];
}

export type UpstreamKind = 'wsgi' | 'asgi' | 'command' | 'url' | 'static';

/** A route's proxy_request_buffering: the route's requestBuffering, else on for WSGI pools and balanced URL routes. */
export function requestBuffering(route: RouteConfig, kind: UpstreamKind): boolean {
  return route.requestBuffering ?? (kind === 'wsgi' || (route.kind === 'proxy' && route.targets.length > 1));
}

/** The name of the upstream block a balanced proxy route is exported to. */
export function balancedUpstreamName(route: RouteConfig): string {
  return `servestack_route${route.index}`;
}

/** The `server` line of one member: host:port with NGINX's max_fails and fail_timeout from the route. */
export function balancedServer(url: string, balance: BalanceConfig): string {
  const u = new URL(url.replace(/^ws/i, 'http'));
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port} max_fails=${balance.maxFails} fail_timeout=${nginxTime(balance.failTimeoutMs)}`;
}

/**
 * A route's compress as NGINX's gzip module (brotli needs the ngx_brotli module, written
 * as a comment). gzip_types takes exact types: each pattern is expanded against the
 * known types, text/html is always on in NGINX.
 */
export function compressionDirectives(compress: CompressionConfig | undefined, knownTypes: Iterable<string>, withVary: boolean): Directive[] {
  if (!compress) return [{ name: 'gzip', value: 'off', from: 'the route\'s "compress": false' }];
  const types = new Set<string>();
  for (const pattern of compress.types) if (!pattern.includes('*')) types.add(pattern.toLowerCase());
  // NGINX hashes *_types in 64-byte buckets: a longer name (a vnd.…+xml type) fails nginx -t.
  for (const type of knownTypes) if (type.length <= 48 && isCompressibleType(type, compress.types)) types.add(type);
  types.delete('text/html');
  return [
    { name: 'gzip', value: 'on', from: 'routes[].compress' },
    { name: 'gzip_types', value: [...types].sort().join(' ') || 'text/plain', from: 'routes[].compress.types' },
    { name: 'gzip_min_length', value: String(compress.minSize), from: 'routes[].compress.minSize' },
    { name: 'gzip_comp_level', value: String(compress.gzipLevel), from: 'routes[].compress.gzipLevel' },
    ...(withVary ? [{ name: 'gzip_vary', value: 'on', from: 'Vary: Accept-Encoding, as ServeStack sends it' }] : []),
    { name: 'gzip_proxied', value: 'any', from: 'ServeStack compresses app answers whatever their caching headers' },
  ];
}

/** proxy_read_timeout: never shorter than the pool's timeout (Gunicorn's acts first). */
export function readTimeoutMs(pool: PoolConfig | undefined): number {
  if (!pool) return URL_ROUTE_READ_TIMEOUT_MS;
  if (pool.kind === 'command') return Math.max(URL_ROUTE_READ_TIMEOUT_MS, pool.timeoutMs);
  return pool.timeoutMs > 0 ? pool.timeoutMs + READ_TIMEOUT_MARGIN_MS : NO_TIMEOUT_READ_MS;
}

export interface NginxRate {
  rate: string; // "20r/s"
  burst: number;
  exact: boolean;
}

/**
 * A route's rateLimit as limit_req: ServeStack's bucket holds `count` requests and refills
 * at count per period; NGINX's with burst=B nodelay lets 1 + B through at once, so B = count - 1.
 * NGINX rates are per second or per minute; a per-hour count that is no whole number per
 * minute is rounded (and warned about).
 */
export function nginxRate(rate: { count: number; perMs: number }): NginxRate {
  const burst = rate.count - 1;
  if (rate.perMs === 1000) return { rate: `${rate.count}r/s`, burst, exact: true };
  const perMinute = (rate.count * 60_000) / rate.perMs;
  if (Number.isInteger(perMinute)) return { rate: `${perMinute}r/m`, burst, exact: true };
  return { rate: `${Math.max(1, Math.round(perMinute))}r/m`, burst, exact: false };
}

export interface GunicornSetting {
  name: string;
  value: string; // Python source
  from: string;
}

/** Gunicorn's worker class: UvicornWorker for ASGI, gthread with threads, else sync. */
export function workerClass(pool: PythonPoolConfig, kind: 'wsgi' | 'asgi'): string {
  if (kind === 'asgi') return 'uvicorn.workers.UvicornWorker';
  return pool.threads > 1 ? 'gthread' : 'sync';
}

/** max_requests_jitter: ServeStack replaces workers one at a time; jitter keeps Gunicorn's from restarting together. */
export function maxRequestsJitter(maxRequests: number): number {
  return maxRequests > 0 ? Math.max(1, Math.floor(maxRequests / 10)) : 0;
}

export interface FieldMapping {
  field: string;
  nginx: string;
  gunicorn: string;
  note?: string;
}

/** Every servestack.json field and where it goes; printed in the exported README. */
export const FIELD_MAP: readonly FieldMapping[] = [
  { field: 'listen', nginx: '`listen` of the `server`', gunicorn: '—' },
  { field: 'tls', nginx: '`listen … ssl`, `ssl_certificate`, `ssl_certificate_key`', gunicorn: '—', note: '"auto" (a localhost certificate) becomes placeholders for a real certificate (certbot).' },
  { field: 'name', nginx: '`server_name` (your real host name replaces NAME.localhost)', gunicorn: '—' },
  { field: 'trustedProxies', nginx: '`set_real_ip_from` (realip), or nothing when NGINX is the edge', gunicorn: '`forwarded_allow_ips`', note: 'In production NGINX is the edge and Gunicorn trusts it: the exported files set that up.' },
  { field: 'httpRedirect', nginx: 'not written: a `server` with `listen 80;` and `return 308 https://$host$request_uri;`', gunicorn: '—', note: 'Production redirects at its edge (80 → 443), usually set up by certbot; the export warns (EXPORT_TLS).' },
  { field: 'pools.<name>.app', nginx: '`upstream <name>`', gunicorn: '`wsgi_app`' },
  { field: 'pools.<name>.interface', nginx: '—', gunicorn: '`worker_class`: `uvicorn.workers.UvicornWorker` for ASGI' },
  { field: 'pools.<name>.python', nginx: '—', gunicorn: 'the systemd unit runs `<python> -m gunicorn`' },
  { field: 'pools.<name>.workers', nginx: '—', gunicorn: '`workers`' },
  { field: 'pools.<name>.threads', nginx: '—', gunicorn: '`threads`, and `worker_class = "gthread"` when above 1' },
  { field: 'pools.<name>.timeout', nginx: '`proxy_read_timeout` = timeout + 5s (never shorter)', gunicorn: '`timeout`, `graceful_timeout`', note: 'Gunicorn kills a sync worker past its timeout; NGINX then answers 502. gthread and ASGI workers are not killed: NGINX answers 504 at timeout + 5s.' },
  { field: 'pools.<name>.maxRequests', nginx: '—', gunicorn: '`max_requests`, `max_requests_jitter` (a tenth)' },
  { field: 'pools.<name>.reload', nginx: '—', gunicorn: '`reload = False`', note: 'Production restarts on deploy (`systemctl reload`), not on save.' },
  { field: 'pools.<name>.env', nginx: '—', gunicorn: '`raw_env`' },
  { field: 'pools.<name>.envFile', nginx: '—', gunicorn: 'read by gunicorn.conf.py into the environment (env wins, as in ServeStack)' },
  { field: 'pools.<name>.command', nginx: '`upstream <name>`', gunicorn: 'a systemd unit running the command with `PORT` set' },
  { field: 'routes', nginx: 'one prefix `location` per route (longest prefix wins in both)', gunicorn: '—' },
  { field: 'routes[].path', nginx: '`location <path>`; `location = <path without slash>` answers the 301', gunicorn: '—' },
  { field: 'routes[].static', nginx: '`alias`, `gzip_static`, `etag`, `Cache-Control: no-cache`, dotfiles 404', gunicorn: '—', note: 'Precompressed .br siblings need the ngx_brotli module; .gz siblings are served.' },
  { field: 'routes[].pool', nginx: '`proxy_pass http://<pool>`', gunicorn: '—' },
  { field: 'routes[].proxy', nginx: '`proxy_pass <url>` with `Upgrade`/`Connection` for WebSockets; several URLs: an `upstream servestack_route<index>` block with a `server` line each, `proxy_next_upstream error timeout`', gunicorn: '—' },
  { field: 'routes[].balance', nginx: '`least_conn` in the route\'s `upstream` block (round robin is NGINX\'s default)', gunicorn: '—' },
  { field: 'routes[].maxFails', nginx: '`max_fails=` on each `server` line', gunicorn: '—' },
  { field: 'routes[].failTimeout', nginx: '`fail_timeout=` on each `server` line', gunicorn: '—', note: 'NGINX sends the next request to a failed server once fail_timeout is up, as ServeStack probes it.' },
  { field: 'routes[].compress', nginx: '`gzip on`, `gzip_types`, `gzip_min_length`, `gzip_comp_level`, `gzip_vary on`, `gzip_proxied any` in the location', gunicorn: '—', note: 'On-the-fly brotli needs the ngx_brotli module: its directives are written as comments. NGINX compresses static files on every request; ServeStack once per file.' },
  { field: 'routes[].maxBodySize', nginx: '`client_max_body_size` in the location', gunicorn: '—' },
  { field: 'routes[].rateLimit', nginx: '`limit_req_zone` + `limit_req … burst=count-1 nodelay`, `limit_req_status 429`', gunicorn: '—', note: 'Counted per NGINX host.' },
  { field: 'routes[].requestBuffering', nginx: '`proxy_request_buffering` (default on for WSGI pools, off otherwise)', gunicorn: '—' },
  { field: 'limits.maxBodySize', nginx: '`client_max_body_size`', gunicorn: '—' },
  { field: 'limits.maxHeaderSize', nginx: '`large_client_header_buffers <maxHeaderSize / maxHeaderLineSize> …`', gunicorn: '`limit_request_line = 0`, `limit_request_field_size = 0` (NGINX enforces it)', note: 'NGINX answers 400 where ServeStack answers 431 for a head over the limit.' },
  { field: 'limits.maxHeaderLineSize', nginx: '`large_client_header_buffers … <maxHeaderLineSize>`', gunicorn: '— (NGINX enforces it)', note: 'Both answer 414 for a long request line; for one long header field NGINX answers 400 where ServeStack answers 431.' },
  { field: 'limits.headerTimeout', nginx: '`client_header_timeout`', gunicorn: '—' },
  { field: 'limits.queueSize', nginx: '— (no upstream queue in open-source NGINX)', gunicorn: '`backlog` stays 2048', note: 'Requests wait in the listen backlog instead of a 503 once the queue is full.' },
  { field: 'limits.maxHeaderCount', nginx: '— (NGINX has no header count limit)', gunicorn: '`limit_request_fields` (WSGI pools)', note: 'Gunicorn answers 400 where ServeStack answers 431; static files, URL routes, command and ASGI pools get no count limit.' },
  { field: 'limits.bufferSize', nginx: '`client_body_buffer_size`, `proxy_buffer_size`, `proxy_buffers`', gunicorn: '—' },
  { field: 'limits.maxTempFileSize', nginx: '`proxy_max_temp_file_size`', gunicorn: '—' },
  { field: 'limits.maxWebSocketMessageSize', nginx: '— (NGINX passes WebSocket frames through)', gunicorn: "uvicorn worker's `ws_max_size` (its default is the same 16 MiB)", note: 'Written into no file: UvicornWorker takes the uvicorn default, which matches the default here.' },
  { field: 'dev', nginx: '—', gunicorn: '—', note: 'development only: the live-reload script is never part of an export.' },
  { field: 'dev.liveReload', nginx: '—', gunicorn: '—', note: 'development only.' },
  { field: 'dev.watch', nginx: '—', gunicorn: '—', note: 'development only (Gunicorn\'s `reload_extra_files` is for development too).' },
];
