// Contracts shared across processes: the worker contract (mirrored in
// server/python/servestack_channel.py, checked by a unit test) and the control-channel
// messages (server ⇄ extension, CLI, dashboard; documented in docs/control-protocol.md).

// ── Worker contract ─────────────────────────────────────────────────────────────────
export const WORKER_CONTRACT = {
  /** Worker exit code: the runtime itself could not start (bad arguments, no channel). */
  exitBootFailed: 3,
  /** Worker exit code: the user's app could not be imported or built. */
  exitAppLoadFailed: 4,
  /** How often a worker says it is alive. */
  heartbeatIntervalMs: 1000,
  /** A worker silent for this long is considered hung (unless paused in a debugger). */
  heartbeatTimeoutMs: 30000,
  /** After asking a worker to stop, how long before it is killed. */
  killGraceMs: 2000,
  /** The worker's data channel (requests, bodies, Stop; and every frame it sends back). */
  channelFd: 3,
  /** The worker's control channel (Abort, Pause, Resume, Revoke, DumpStack), read by a thread of its own. */
  controlFd: 4,
} as const;

// ── Shutdown ────────────────────────────────────────────────────────────────────────
/** Requests in flight get this long to finish when the server stops; the workers' stop shares the same deadline. */
const SHUTDOWN_DRAIN_MS = 10_000;
/**
 * The one shutdown deadline of every layer. The server drains for `drainMs` (proxy and
 * workers together), then kills what is left (`WORKER_CONTRACT.killGraceMs`) and closes its
 * control channel; a client that asked it to stop (the editor, `servestack stop`) kills
 * the process only after `killAfterMs`, so it never cuts a drain the server promised.
 */
export const SHUTDOWN = {
  drainMs: SHUTDOWN_DRAIN_MS,
  killAfterMs: SHUTDOWN_DRAIN_MS + WORKER_CONTRACT.killGraceMs + 3_000,
} as const;

/**
 * Frames on the worker channel: [u32 payload length][u8 type][u32 request id][payload].
 * Big-endian. Request id 0 is for frames not tied to a request.
 */
export const FRAME_HEADER_BYTES = 9;
export const FrameType = {
  // arbiter → worker
  Request: 1, // RequestHead as NUL-separated latin-1 fields (server/pool/heads.ts)
  Body: 2, // raw request body bytes
  BodyEnd: 3, // end of the request body
  Abort: 4, // the client went away; stop sending
  Stop: 5, // finish in-flight requests, then exit 0
  DumpStack: 6, // write every thread's Python stack to stderr
  Revoke: 7, // give back this request if it has not started (answered by Revoked)
  Pause: 8, // the proxy's buffers for this response are full (last resort): hold its chunks
  Resume: 9, // the buffers have room again (every Pause gets a Resume or an Abort)
  // worker → arbiter
  Ready: 16, // JSON { pid, interface, python, capacity }
  Heartbeat: 17,
  Start: 18, // status, then name and value of each header: NUL-separated latin-1 (server/pool/heads.ts)
  Chunk: 19, // raw response body bytes
  End: 20, // response complete
  LoadFailed: 21, // JSON { message, traceback, file?, line? } then exit 4
  Revoked: 22, // the revoked request had not started and was dropped
  Answer: 23, // a whole response in one frame: [u32 head length][a Start's payload][the body]; no Chunk or End follows (a body over 1 MiB comes as Start, Chunks, End)
  // WebSocket sessions (ASGI workers only; docs/worker-contract.md, "WebSockets"). The
  // request id names the session; Pause/Resume (8/9) hold and release the app's sends.
  WsConnect: 32, // → worker: JSON WebSocketHead (the websocket.connect event)
  WsAccept: 33, // → arbiter: JSON { subprotocol?, headers } (websocket.accept)
  WsText: 34, // both ways: one whole text message, UTF-8
  WsBinary: 35, // both ways: one whole binary message
  WsClose: 36, // both ways: [u16 code][UTF-8 reason]; from the app before WsAccept it means 403
  WsEnd: 37, // → arbiter: the app's task for the session returned; empty, or {"error":true}
  WsHoldClient: 38, // → arbiter: the app's unread messages passed the high-water mark: stop reading the client
  WsReleaseClient: 39, // → arbiter: the app caught up: read the client again
  StackReport: 40, // JSON StackReport: the answer to DumpStack (request id = the DumpStack's), beside the text on stderr
  DebugState: 41, // JSON { paused, where? }: a worker under debugpy stopped in, or left, the debugger
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

/** What the proxy sends for each request: the parsed HTTP head, ready for WSGI/ASGI (on the wire: server/pool/heads.ts; a WsConnect carries it as JSON). */
export interface RequestHead {
  method: string;
  path: string; // percent-decoded? no: raw path without query, as received
  query: string; // without "?"
  headers: [string, string][]; // lower-case names, forwarding headers already set
  scheme: 'http' | 'https';
  serverName: string;
  serverPort: number;
  remoteAddr: string;
  remotePort: number;
  httpVersion: string; // "1.1"
  /** Whether a body follows (Body frames then BodyEnd); false means BodyEnd is implied. */
  hasBody: boolean;
  /** Where the app is mounted behind a front ("/absproxy/8000"): WSGI SCRIPT_NAME, ASGI root_path. Absent: "". */
  scriptName?: string;
}

/** What a WsConnect frame carries: the upgrade request's head and the subprotocols the client offers. */
export interface WebSocketHead extends Omit<RequestHead, 'hasBody'> {
  subprotocols: string[];
}

// ── Control channel ─────────────────────────────────────────────────────────────────
// One JSON object per WebSocket text message. docs/control-protocol.md documents every
// message; a change that is not a compatible addition raises CONTROL_PROTOCOL_VERSION.
export const CONTROL_PROTOCOL_VERSION = 1;
/** The WebSocket path of the control channel. */
export const CONTROL_PATH = '/control';
/** The subprotocol a client offers (and the server selects) for this version. */
export const CONTROL_SUBPROTOCOL = 'servestack.v1';
/** Browsers cannot set headers: they offer the token as the subprotocol `servestack.token.<token>`. */
export const CONTROL_TOKEN_PROTOCOL_PREFIX = 'servestack.token.';

export type WorkerState = 'booting' | 'idle' | 'busy' | 'draining' | 'exited';

export interface WorkerInfo {
  id: number; // unique for the server's life
  pool: string;
  pid?: number;
  state: WorkerState;
  requests: number; // handled since start
  inFlight: number;
  startedAt: number; // epoch ms
  rssBytes?: number;
  /** CPU used over the last second, in percent of one core (Linux; absent elsewhere or before the first sample). */
  cpuPercent?: number;
  generation: number; // increases with each reload of the pool
  exitCode?: number | null;
  /** Set while the worker runs under debugpy (server/pool/debug.ts). */
  debug?: WorkerDebugInfo;
  /** Where its app was when its last request timed out (the worker that replaced a timed-out one keeps it). */
  lastTimeout?: StackLocation;
}

/** A place in Python code, as a worker's stack report gives it. */
export interface StackLocation {
  file: string;
  line: number;
  function: string;
}

export interface WorkerDebugInfo {
  /** 127.0.0.1:port where debugpy listens (0 until the worker is ready). */
  port: number;
  /** Stopped at a breakpoint, a step or a pause: its request timeout and heartbeat checks are off anyway. */
  paused: boolean;
  where?: StackLocation;
  /** Which debugpy it runs: "debugpy 1.6.6 (the interpreter's own)". */
  debugpy?: string;
  /** Every request of the pool (or of this route path) goes to this worker. */
  pinned?: 'pool' | { route: string };
}

/** Every thread's stack in a worker, and where the thread serving a request is. */
export interface StackReport {
  pid: number;
  threads: { name: string; frames: StackLocation[] }[];
  stuck: StackLocation | null;
}

export interface PoolInfo {
  name: string;
  kind: 'python' | 'command';
  app?: string;
  command?: string;
  wanted: number; // desired worker count
  state: 'running' | 'backoff' | 'stopped';
  /** Set while the app cannot load: the one-line reason, with file:line when known. */
  failure?: string;
  /** The same failure as data (set with `failure`): a clickable location without parsing the text. */
  failureDetail?: PoolFailure;
}

export interface PoolFailure {
  /** One of ERROR_CODES (server/errors.ts), e.g. APP_LOAD_FAILED, PYTHON_NOT_FOUND, WORKER_CRASH_LOOP. */
  code: string;
  message: string;
  /** The source file at fault, as the worker reported it (absolute, or relative to the pool's folder). */
  file?: string;
  line?: number;
}

export interface RouteInfo {
  path: string;
  kind: 'static' | 'pool' | 'proxy';
  target: string; // folder, pool name or URL
  index: number;
}

export interface LogLine {
  time: number; // epoch ms
  level: 'debug' | 'info' | 'warn' | 'error';
  source: 'access' | 'worker' | 'server' | 'config' | 'browser';
  workerId?: number;
  pool?: string;
  text: string;
}

export interface RouteMetrics { requests: number; rps: number; p50Ms: number; p95Ms: number; p99Ms: number; status: Record<'2xx' | '3xx' | '4xx' | '5xx', number> }
export interface MetricsSample {
  time: number;
  rps: number;
  status: Record<'2xx' | '3xx' | '4xx' | '5xx', number>; // counts in the last second
  routes: Record<string, RouteMetrics>;
  pools: Record<string, RouteMetrics & { queueDepth: number }>;
}

/** The server's HTTPS, when "tls" is set: the Workers view says "HTTPS not trusted yet" while `trusted` is false. */
export interface HttpsInfo {
  mode: 'auto' | 'files';
  notAfter: string; // ISO date: the certificate served now is valid until then
  /** "auto" only: the local CA's certificate file, and whether a trust store here has it (unknown until checked). */
  caFile?: string;
  trusted?: boolean;
  /** "httpRedirect": the plain-HTTP address that redirects here. */
  redirectUrl?: string;
}

export interface Snapshot {
  protocol: number;
  server: { pid: number; version: string; dir: string; url: string; configFile?: string; startedAt: number; https?: HttpsInfo };
  pools: PoolInfo[];
  workers: WorkerInfo[];
  routes: RouteInfo[];
}

/**
 * A field of an applied config that the running server did not take (the listener was
 * bound with it): it applies when the server restarts. Where it is written, for editors.
 */
export interface RestartNeededField {
  /** The name in servestack.json: "listen", "tls", "limits.…". */
  field: string;
  file: string;
  line: number; // 1-based
  col: number; // 1-based
  /** What the server keeps, and what the file asks for, as people read them. */
  running: string;
  wanted: string;
}

/** What applying a config text came to (the `config` event and the `applyConfig` reply). */
export interface ConfigApplyResult {
  applied: boolean;
  diagnostics: import('./config/types').Diagnostic[];
  /** Present and non-empty when the config was applied except these fields. */
  restartNeeded?: RestartNeededField[];
}

/** Server → client. */
export type ControlEvent =
  | { type: 'snapshot'; snapshot: Snapshot }
  | { type: 'worker'; worker: WorkerInfo }
  | { type: 'pool'; pool: PoolInfo }
  | { type: 'routes'; routes: RouteInfo[] }
  | { type: 'metrics'; metrics: MetricsSample }
  | { type: 'log'; line: LogLine }
  | ({ type: 'config' } & ConfigApplyResult)
  | { type: 'requests'; requests: RequestSummary[] }
  | { type: 'reply'; id: number; ok: true; result?: unknown }
  | { type: 'reply'; id: number; ok: false; error: ControlReplyError }
  | { type: 'stopping' };

/** A failed command's reply: `code` is one of ERROR_CODES (server/errors.ts). */
export interface ControlReplyError {
  code: string;
  message: string;
  /** What to do about it, when the server knows. */
  hint?: string;
}

/** Client → server; every command has an id that its reply carries. */
export type ControlCommand =
  | { id: number; type: 'scale'; pool?: string; workers: number }
  | { id: number; type: 'reload'; pool?: string }
  | { id: number; type: 'restartWorker'; worker: number }
  | { id: number; type: 'killWorker'; worker: number }
  | { id: number; type: 'applyConfig'; text: string }
  | { id: number; type: 'status' }
  | { id: number; type: 'logs'; lines?: number }
  | { id: number; type: 'stop' }
  | { id: number; type: 'requests'; limit?: number }
  | { id: number; type: 'inspectRequest'; request: number; reveal?: boolean }
  | { id: number; type: 'replayRequest'; request: number; edit?: ReplayEdit }
  | { id: number; type: 'debugWorkers'; pool?: string; worker?: number; all?: boolean; pin?: boolean; pinRoute?: string; port?: number; debugpyPath?: string }
  | { id: number; type: 'stopDebugging'; pool?: string }
  | { id: number; type: 'dumpStack'; worker: number };

export type ControlCommandType = ControlCommand['type'];
/** A command as a client writes it; the client library adds the id. */
export type ControlRequest = ControlCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

/** What a successful reply's `result` holds, per command. */
export interface ControlResults {
  scale: undefined;
  reload: undefined;
  restartWorker: undefined;
  killWorker: undefined;
  /**
   * applied=false: the running config is unchanged (diagnostics say why). applied=true with
   * restartNeeded: everything else applied; those fields wait for a restart.
   */
  applyConfig: ConfigApplyResult;
  status: Snapshot;
  logs: { lines: LogLine[] };
  /** Sent before the server starts stopping; the client sees the connection close when it has. */
  stop: undefined;
  /** Newest last. `enabled` false: the inspector is off (not development), the list is empty. */
  requests: { enabled: boolean; requests: RequestSummary[] };
  inspectRequest: InspectedRequest;
  /** `request`: the id of the replayed request's own record, when the inspector kept it. */
  replayRequest: { status: number; request?: number };
  /** The debugged workers, ready and listening. */
  debugWorkers: { workers: { id: number; pool: string; port: number; debugpy: string }[] };
  stopDebugging: undefined;
  dumpStack: StackReport;
}

// ── Request inspector ───────────────────────────────────────────────────────────────
/** One request the proxy answered, as the dashboard's table lists it. */
export interface RequestSummary {
  id: number; // unique for the server's life
  time: number; // epoch ms when it arrived
  method: string;
  /** The request target as received: path and query. */
  url: string;
  status: number;
  ms: number;
  route: string;
  pool?: string;
  workerId?: number;
  /** Set on a request sent by replayRequest: the id it replayed. */
  replayOf?: number;
}

export interface InspectedHeader {
  name: string;
  value: string;
  /** The value is hidden (Authorization, Proxy-Authorization, Cookie, Set-Cookie); inspectRequest with reveal shows it. */
  masked?: true;
}

export interface CapturedBody {
  /** Bytes that passed; only the first `kept` of them were kept. */
  size: number;
  kept: number;
  truncated: boolean;
  /** The kept bytes as text when they are UTF-8, else absent (then base64 holds them). */
  text?: string;
  base64?: string;
}

export interface InspectedRequest extends RequestSummary {
  httpVersion: string;
  remoteAddr: string;
  requestHeaders: InspectedHeader[];
  responseHeaders: InspectedHeader[];
  requestBody: CapturedBody;
  responseBody: CapturedBody;
  /** Where the time went. queue: waiting for a worker; app: the worker until the response head; worker: the worker until the end. */
  timing: { totalMs: number; queueMs?: number; appMs?: number; workerMs?: number };
  /** Log lines of its worker (and its access line) while it ran. */
  logs: LogLine[];
}

/** Changes for replayRequest; what is absent is sent as it was. A masked header value left as sent by inspectRequest keeps the original. */
export interface ReplayEdit {
  method?: string;
  url?: string;
  headers?: [string, string][];
  /** The new body as UTF-8 text. */
  body?: string;
}
