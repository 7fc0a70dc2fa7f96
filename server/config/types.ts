// The resolved configuration: what the loader produces after JSONC parsing, schema
// validation, semantic checks and defaults. Everything downstream (proxy, pool, control,
// export, extension) reads this shape, never the raw JSON.
import type { ErrorCode } from '../errors';

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  file: string; // absolute path of the config file (or the folder when detected)
  line: number; // 1-based
  col: number; // 1-based
  endLine: number;
  endCol: number;
  offset: number; // 0-based character offset of the start, for editors
  length: number;
  severity: Severity;
  code: ErrorCode;
  message: string; // says what is wrong and what to do
  /** Machine-readable data a quick fix can use (e.g. the candidate pool names). */
  data?: Record<string, unknown>;
}

export type InterfaceKind = 'wsgi' | 'asgi' | 'auto';

export interface PythonPoolConfig {
  kind: 'python';
  name: string;
  app: string; // "module:callable" or "module:factory()"
  interface: InterfaceKind;
  python?: string; // absolute path or a command on PATH; undefined = resolve at spawn
  workers: number;
  threads: number;
  timeoutMs: number;
  maxRequests: number;
  reload: boolean;
  env: Record<string, string>;
  envFile?: string; // absolute
  cwd: string; // absolute; the workspace folder, put on sys.path
}

export interface CommandPoolConfig {
  kind: 'command';
  name: string;
  command: string; // run by the shell with $PORT set
  env: Record<string, string>;
  envFile?: string;
  cwd: string;
  timeoutMs: number;
}

export type PoolConfig = PythonPoolConfig | CommandPoolConfig;

interface RouteBase {
  path: string; // prefix, starts with "/"
  maxBodySize?: number; // bytes; overrides limits.maxBodySize
  rateLimit?: { count: number; perMs: number };
  /** Read the whole body before dispatch; undefined = the upstream's default (on for WSGI pools). */
  requestBuffering?: boolean;
  /** On-the-fly compression of this route's answers; undefined = off ("compress": false). */
  compress?: CompressionConfig;
  /**
   * 0-based index in the routes array of the config file, for diagnostics and reveal.
   * -1 for the route the loader adds when "routes" is left out (the only pool at "/").
   */
  index: number;
}
export interface StaticRoute extends RouteBase { kind: 'static'; root: string /* absolute */ }
export interface PoolRoute extends RouteBase { kind: 'pool'; pool: string }
export interface ProxyRoute extends RouteBase {
  kind: 'proxy';
  /** The first URL (the only one, unless the route balances). */
  target: string;
  /** Every URL, in the order written; more than one: balanced. */
  targets: string[];
  balance: BalanceConfig;
}

/** How a proxy route with several URLs spreads requests, and when it takes a failing one out (NGINX's upstream block). */
export interface BalanceConfig {
  method: 'round-robin' | 'least-conn';
  /** Failures within failTimeoutMs that take a URL out; 0 = never. */
  maxFails: number;
  failTimeoutMs: number;
}

export interface CompressionConfig {
  /** Media type patterns, "*" matching any part ("text/*", "application/*+json"). */
  types: string[];
  /** Bytes; a smaller Content-Length is sent as it is. */
  minSize: number;
  gzipLevel: number;
  brotliQuality: number;
}
export type RouteConfig = StaticRoute | PoolRoute | ProxyRoute;

export interface ListenConfig {
  host: string;
  port: number;
  /** true when the user named the port (config or --port); else the next free port may be taken. */
  pinned: boolean;
}

/** HTTPS on `listen`: certificates from the local CA, or the user's files (absolute paths). */
export type TlsConfig = 'auto' | { cert: string; key: string };

export interface LimitsConfig {
  maxBodySize: number; // bytes
  maxHeaderSize: number; // bytes of the whole head (request line and header fields) before 431
  maxHeaderLineSize: number; // bytes of the request line (414) or of one header field (431)
  headerTimeoutMs: number;
  queueSize: number; // requests waiting for a worker per pool before 503
  maxHeaderCount: number; // header fields per request before 431
  bufferSize: number; // bytes of one body held in memory before a temp file
  maxTempFileSize: number; // bytes of one response in a temp file before the worker waits; 0 = none
  maxWebSocketMessageSize: number; // bytes of one client WebSocket message to an ASGI pool before close 1009; 0 = none
}

/** The developer loop (server/devloop): the live-reload script and what else reloads the pools. */
export interface DevConfig {
  liveReload: boolean;
  /** Absolute files or folders whose change reloads the Python pools. */
  watch: string[];
}

export interface ServeConfig {
  dir: string; // absolute workspace folder
  file?: string; // absolute config path; undefined when detected
  detected: boolean;
  listen: ListenConfig;
  tls?: TlsConfig;
  /** A plain-HTTP listener that redirects every request to HTTPS (only with tls). */
  httpRedirect?: { host: string; port: number };
  pools: Record<string, PoolConfig>;
  routes: RouteConfig[];
  limits: LimitsConfig;
  /** Also served as http://NAME.localhost:PORT/, the URL printed and opened. */
  name?: string;
  /** Addresses and CIDR ranges whose forwarding headers are believed (trustedFront.ts); [] = none. */
  trustedProxies: string[];
  /** Filled in by the loader; a config built by hand (tests) gets the schema's defaults. */
  dev?: DevConfig;
}

export interface LoadResult {
  /** undefined when errors prevent a usable config. */
  config?: ServeConfig;
  diagnostics: Diagnostic[];
}
