// WebSockets to a Python pool's ASGI app. The front terminates the client's WebSocket
// (the `ws` library: handshake, framing, masking, ping/pong, close handshake, max
// message size) and carries whole messages to one worker over its framed channel
// (WsConnect … WsEnd, docs/worker-contract.md). The handshake waits for the app: the
// 101 goes out only when the app sends websocket.accept (with its subprotocol and
// headers); an app that closes first gets the client a 403, as the ASGI spec says.
//
// Flow control, both ways, without stalling the worker's other connections:
// - app → client: more than `bufferSize` bytes not yet written to the client's socket
//   send Pause for the session (the app's next websocket.send waits), and Resume once
//   half of it has gone out. The channel itself is always read.
// - client → app: the worker asks to stop reading the client (WsHoldClient) while the
//   app has too much unread, and a congested channel pauses the client until it drains.
//
// A session counts as one of its worker's connections. A worker that retires (reload,
// scale-down, stop) keeps its sessions until the drain deadline, then each gets close
// 1001 (going away) on both sides, so the app's task ends and the worker can exit.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { FrameType, type WebSocketHead } from '../protocol';
import type { UpgradeOutcome, UpstreamRequest } from '../upstream/types';
import type { WorkerProcess, WorkerSession } from './worker';

export interface WebSocketLimits {
  /** The largest message a client may send (ws closes with 1009 past it); 0 = no limit. */
  maxMessageSize: number;
  /** Bytes of the app's messages held for a slow client before the app's sends wait. */
  bufferSize: number;
}

/** What the gateway needs of its pool (the arbiter keeps the decisions about workers). */
export interface WebSocketPoolHooks {
  readonly name: string;
  /** 'wsgi' when the pool (or its workers, for "auto") serve WSGI: no WebSocket there. */
  interface(): 'wsgi' | 'asgi' | 'auto';
  appName(): string;
  /** The least busy accepting ASGI worker with a free connection, if any. */
  pickWorker(): WorkerProcess | undefined;
  /** Why nothing can take a connection now (stopped, cannot load, every worker busy); undefined: a worker is on its way, wait. */
  refusal(): string | undefined;
  /** The pool's timeout (0: none): bounds how long the app may take to accept. */
  timeoutMs(): number;
  nextId(): number;
  /** The worker's load changed (a session opened or ended): the Workers view shows it. */
  changed(worker: WorkerProcess): void;
  warn(text: string, workerId?: number): void;
}

/** How long a connection may wait for a worker that is starting before it gets a 503. */
const WAIT_FOR_WORKER_MS = 30_000;
/** RFC 6455 §4.1: the key is 16 random bytes in base64. */
const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** Response headers an app may not set on the 101: the handshake's own, and hop-by-hop ones. */
const HANDSHAKE_HEADERS = new Set([
  'upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions',
  'content-length', 'transfer-encoding', 'keep-alive', 'te', 'trailer', 'proxy-connection',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The handshake request as `ws` reads it: its method and headers, and what the app chose. */
interface HandshakeRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  acceptHeaders: string[];
  subprotocol: string | undefined;
}

export class WebSocketGateway {
  private readonly server: WebSocketServer;
  private readonly sessions = new Set<Session>();
  /** Connections waiting for a worker to be ready, oldest first. */
  private readonly waiting: Session[] = [];

  constructor(private readonly pool: WebSocketPoolHooks, private limits: WebSocketLimits) {
    this.server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: limits.maxMessageSize,
      handleProtocols: (_offered, req) => (req as unknown as HandshakeRequest).subprotocol ?? false,
    });
    this.server.on('headers', (headers, req) => headers.push(...(req as unknown as HandshakeRequest).acceptHeaders));
  }

  setLimits(limits: WebSocketLimits): void {
    this.limits = limits;
    // Read by `ws` for each new connection; open ones keep the limit they started with.
    (this.server.options as { maxPayload: number }).maxPayload = limits.maxMessageSize;
  }

  get bufferSize(): number {
    return this.limits.bufferSize;
  }

  /** Open sessions, for tests and the log. */
  get size(): number {
    return this.sessions.size;
  }

  open(request: UpstreamRequest, socket: Socket, head: Buffer, done?: (outcome: UpgradeOutcome) => void): void {
    const session = new Session(this, this.pool, request, socket, head, done ?? (() => undefined));
    if (this.pool.interface() === 'wsgi') {
      return session.refuse(
        501,
        `Pool '${this.pool.name}' serves a WSGI app (${this.pool.appName()}). WSGI has no WebSocket: a request is a function call that returns one response, so nothing can carry messages afterwards. ` +
          `Serve an ASGI app in this pool (FastAPI, Starlette, Django with Channels or an ASGI application, Quart) with "interface": "asgi" or "auto", or route this path to a program that speaks WebSocket. [WEBSOCKET_UNSUPPORTED]\n`,
      );
    }
    const problem = checkHandshake(request);
    if (problem) return session.refuse(problem.status, problem.message, problem.headers);
    this.sessions.add(session);
    this.dispatch(session);
  }

  /** A worker became ready (or freed a connection): connections waiting for one go now. */
  pump(): void {
    while (this.waiting.length > 0) {
      const session = this.waiting[0];
      if (session.finished) {
        this.waiting.shift();
        continue;
      }
      const worker = this.pool.pickWorker();
      if (!worker) {
        const refusal = this.pool.refusal();
        if (refusal === undefined) return;
        this.waiting.shift();
        session.refuse(503, refusal + '\n');
        continue;
      }
      this.waiting.shift();
      session.connect(worker);
    }
  }

  private dispatch(session: Session): void {
    if (this.waiting.length === 0) {
      const worker = this.pool.pickWorker();
      if (worker) return session.connect(worker);
    }
    const refusal = this.pool.refusal();
    if (refusal !== undefined) return session.refuse(503, refusal + '\n');
    this.waiting.push(session);
    session.waitAtMost(WAIT_FOR_WORKER_MS);
  }

  /** The worker retires: its sessions end with 1001 after `deadlineMs`, unless they end first. */
  drain(worker: WorkerProcess, deadlineMs: number): void {
    for (const session of this.sessions) if (session.worker === worker) session.goAwayAfter(deadlineMs);
  }

  /** The pool stops: every session, and every connection still waiting, goes away after `deadlineMs`. */
  closeAll(deadlineMs: number): void {
    for (const session of this.waiting.splice(0)) session.refuse(503, `the server is shutting down\n`);
    for (const session of this.sessions) session.goAwayAfter(deadlineMs);
  }

  handshake(req: HandshakeRequest, socket: Socket, head: Buffer, opened: (ws: WebSocket) => void): void {
    this.server.handleUpgrade(req as unknown as IncomingMessage, socket, head, opened);
  }

  forget(session: Session): void {
    this.sessions.delete(session);
  }
}

type Phase = 'waiting' | 'connecting' | 'open' | 'ended';

class Session implements WorkerSession {
  readonly id: number;
  worker: WorkerProcess | undefined;
  private phase: Phase = 'waiting';
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** The app has been told the connection is gone (WsClose sent to it), or its task has ended. */
  private appGone = false;
  private appEnded = false;
  /** App messages handed to `ws` and not yet written to the client's socket. */
  private unsent = 0;
  private appPaused = false;
  private heldByApp = false;
  private heldByChannel = false;
  private handshakeBytes = 0;
  private logged = false;

  constructor(
    private readonly gateway: WebSocketGateway,
    private readonly pool: WebSocketPoolHooks,
    private readonly request: UpstreamRequest,
    private readonly socket: Socket,
    private readonly head: Buffer,
    private readonly done: (outcome: UpgradeOutcome) => void,
  ) {
    this.id = pool.nextId();
    socket.once('close', this.onSocketClose);
  }

  get finished(): boolean {
    return this.phase === 'ended';
  }

  waitAtMost(ms: number): void {
    this.timer = setTimeout(() => {
      if (this.phase === 'waiting') this.refuse(503, `no worker of pool '${this.pool.name}' was ready within ${ms / 1000}s\n`);
    }, ms);
    this.timer.unref();
  }

  connect(worker: WorkerProcess): void {
    if (this.phase !== 'waiting') return;
    clearTimeout(this.timer);
    this.phase = 'connecting';
    this.worker = worker;
    worker.addSession(this.id, this);
    worker.sendSessionFrame(FrameType.WsConnect, this.id, Buffer.from(JSON.stringify(this.head_())));
    this.pool.changed(worker);
    const timeoutMs = this.pool.timeoutMs();
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => {
        if (this.phase !== 'connecting') return;
        this.tellApp(1006, 'the app did not accept in time');
        this.refuse(504, `the app did not accept or close the WebSocket within ${timeoutMs / 1000}s (the pool's timeout)\n`);
      }, timeoutMs);
      this.timer.unref();
    }
  }

  private head_(): WebSocketHead {
    const r = this.request;
    const offered = r.headers.filter(([name]) => name === 'sec-websocket-protocol').flatMap(([, value]) => value.split(','));
    return {
      method: r.method,
      path: r.path,
      query: r.query,
      headers: r.headers,
      scheme: r.scheme,
      serverName: r.serverName,
      serverPort: r.serverPort,
      remoteAddr: r.remoteAddr,
      remotePort: r.remotePort,
      httpVersion: r.httpVersion,
      subprotocols: offered.map((p) => p.trim()).filter(Boolean),
    };
  }

  /** Answers the upgrade request with a plain HTTP response and ends it (no WebSocket opened). */
  refuse(status: number, text: string, extra: string[] = []): void {
    if (this.phase === 'open' || this.phase === 'ended') return;
    this.end();
    const body = Buffer.from(text);
    const reason = STATUS_TEXT[status] ?? 'Error';
    if (!this.socket.destroyed) {
      this.socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n${extra.map((h) => h + '\r\n').join('')}\r\n${text}`,
      );
    }
    this.log(status, body.length);
  }

  /** The retiring worker's drain deadline: then close 1001 to the client and the app. */
  goAwayAfter(ms: number): void {
    if (this.drainTimer || this.phase === 'ended') return;
    this.drainTimer = setTimeout(() => this.goAway(), ms);
    this.drainTimer.unref();
  }

  private goAway(): void {
    const why = `server going away`;
    if (this.phase === 'connecting' || this.phase === 'waiting') {
      this.tellApp(1001, why);
      return this.refuse(503, `pool '${this.pool.name}' is reloading or stopping; connect again\n`);
    }
    if (this.phase !== 'open') return;
    this.tellApp(1001, why);
    this.ws?.close(1001, why);
  }

  // ── frames from the worker ──
  onFrame(type: number, payload: Buffer): void {
    switch (type) {
      case FrameType.WsAccept:
        return this.onAccept(payload);
      case FrameType.WsText:
      case FrameType.WsBinary:
        return this.toClient(payload, type === FrameType.WsBinary);
      case FrameType.WsClose: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1000;
        const reason = payload.subarray(2).toString('utf8');
        if (this.phase === 'connecting') {
          // Closed before accept: the handshake is refused (ASGI: HTTP 403).
          this.appGone = true;
          return this.refuse(403, '');
        }
        if (this.phase === 'open') closeClient(this.ws!, code, reason);
        return;
      }
      case FrameType.WsEnd: {
        this.appEnded = true;
        this.appGone = true;
        this.release();
        const failed = payload.length > 0;
        if (this.phase === 'connecting') return this.refuse(500, failed ? `the app failed before it accepted the WebSocket; its traceback is in the ServeStack log\n` : `the app returned without accepting or closing the WebSocket\n`);
        if (this.phase === 'open') closeClient(this.ws!, failed ? 1011 : 1000, failed ? 'internal error' : '');
        return;
      }
      case FrameType.WsHoldClient:
        this.heldByApp = true;
        this.ws?.pause();
        return;
      case FrameType.WsReleaseClient:
        this.heldByApp = false;
        if (!this.heldByChannel) this.ws?.resume();
        return;
      default:
        return;
    }
  }

  private onAccept(payload: Buffer): void {
    if (this.phase !== 'connecting') return;
    clearTimeout(this.timer);
    const accept = JSON.parse(payload.toString('utf8')) as { subprotocol?: string; headers?: [string, string][] };
    const acceptHeaders: string[] = [];
    for (const [name, value] of accept.headers ?? []) {
      if (!TOKEN.test(name) || !FIELD_VALUE.test(value) || HANDSHAKE_HEADERS.has(name.toLowerCase())) {
        this.pool.warn(`WebSocket ${this.request.path}: the app's accept header ${JSON.stringify(name)} was not sent (a handshake or hop-by-hop header, or not a valid field)`, this.worker?.id);
        continue;
      }
      acceptHeaders.push(`${name}: ${value}`);
    }
    const offered = this.head_().subprotocols;
    const subprotocol = accept.subprotocol && offered.includes(accept.subprotocol) ? accept.subprotocol : undefined;
    if (accept.subprotocol && !subprotocol) {
      this.pool.warn(`WebSocket ${this.request.path}: the app chose subprotocol ${JSON.stringify(accept.subprotocol)}, which the client did not offer; the handshake goes without it`, this.worker?.id);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of this.request.headers) headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    headers.upgrade = this.request.upgrade ?? 'websocket';
    const req: HandshakeRequest = { method: 'GET', url: this.request.url, headers, acceptHeaders, subprotocol };
    // `ws` completes the handshake at once (no verifyClient) or gives up on a socket the client already closed.
    this.gateway.handshake(req, this.socket, this.head, (ws) => this.onOpen(ws));
    if (this.phase === 'connecting') {
      this.tellApp(1006, '');
      this.end();
      this.log(499, 0);
    }
  }

  private onOpen(ws: WebSocket): void {
    this.phase = 'open';
    this.ws = ws;
    this.handshakeBytes = this.socket.bytesWritten;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const worker = this.worker;
      if (!worker || this.appGone) return;
      worker.sendSessionFrame(isBinary ? FrameType.WsBinary : FrameType.WsText, this.id, data);
      if (!this.heldByChannel && worker.whenChannelDrains(() => {
        this.heldByChannel = false;
        if (!this.heldByApp) this.ws?.resume();
      })) {
        this.heldByChannel = true;
        ws.pause();
      }
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.tellApp(code, reason.toString('utf8'));
      this.end();
      this.log(101, Math.max(0, this.socket.bytesWritten - this.handshakeBytes));
    });
    ws.on('error', () => undefined); // a protocol error or a message over the limit: 'close' follows with its code
    if (this.heldByApp) ws.pause();
  }

  private toClient(payload: Buffer, binary: boolean): void {
    const ws = this.ws;
    if (this.phase !== 'open' || !ws || ws.readyState !== ws.OPEN) return;
    const size = payload.length;
    this.unsent += size;
    ws.send(payload, { binary }, () => {
      this.unsent -= size;
      if (this.appPaused && this.unsent <= this.gateway.bufferSize / 2) {
        this.appPaused = false;
        this.worker?.sendSessionFrame(FrameType.Resume, this.id);
      }
    });
    if (!this.appPaused && this.unsent > this.gateway.bufferSize) {
      this.appPaused = true;
      this.worker?.sendSessionFrame(FrameType.Pause, this.id);
    }
  }

  /** The app's receive() gets websocket.disconnect with this code (once). */
  private tellApp(code: number, reason: string): void {
    if (this.appGone || !this.worker) return;
    this.appGone = true;
    const reasonBytes = Buffer.from(reason, 'utf8');
    const payload = Buffer.allocUnsafe(2 + reasonBytes.length);
    payload.writeUInt16BE(code, 0);
    reasonBytes.copy(payload, 2);
    this.worker.sendSessionFrame(FrameType.WsClose, this.id, payload);
  }

  private release(): void {
    const worker = this.worker;
    if (!worker || !worker.sessions.has(this.id)) return;
    worker.removeSession(this.id);
    this.pool.changed(worker);
    this.gateway.pump();
  }

  /** The worker exited: the app cannot answer any more. */
  workerGone(): void {
    this.appGone = true;
    this.appEnded = true;
    this.worker = undefined;
    if (this.phase === 'connecting') return this.refuse(502, `the worker exited before the app accepted the WebSocket; see the ServeStack log\n`);
    if (this.phase === 'open' && this.ws) closeClient(this.ws, 1011, "the app's worker exited");
  }

  private readonly onSocketClose = (): void => {
    if (this.phase === 'open') return; // ws reports it ('close' above)
    if (this.phase === 'ended') return;
    // The client left during the handshake.
    this.tellApp(1006, '');
    this.end();
    this.log(499, 0);
  };

  /** No more client side; the worker's slot is freed when the app's task ends (WsEnd) or its worker exits. */
  private end(): void {
    this.phase = 'ended';
    clearTimeout(this.timer);
    clearTimeout(this.drainTimer);
    this.gateway.forget(this);
    if (this.appEnded) this.release();
  }

  private log(status: number, bytes: number): void {
    if (this.logged) return;
    this.logged = true;
    const worker = this.worker ?? undefined;
    this.done({ status, bytes, ...(worker ? { worker: `${this.pool.name}:${worker.id}` } : {}) });
  }
}

/** Closes with the app's code when `ws` allows it (1000, 1001–1014 but not 1004–1006, 3000–4999), else 1000. */
function closeClient(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return;
  const valid = code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  let text = reason;
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
  ws.close(valid ? code : 1000, text);
}

/** A handshake `ws` would refuse, answered before the app is bothered. */
function checkHandshake(request: UpstreamRequest): { status: number; message: string; headers?: string[] } | undefined {
  const header = (name: string) => request.headers.find(([n]) => n === name)?.[1];
  if (request.method !== 'GET') return { status: 405, message: 'A WebSocket handshake is a GET request.\n' };
  if (!KEY.test(header('sec-websocket-key') ?? '')) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header.\n' };
  const version = header('sec-websocket-version');
  if (version !== '13' && version !== '8') return { status: 426, message: 'This server speaks WebSocket version 13.\n', headers: ['Sec-WebSocket-Version: 13'] };
  return undefined;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 405: 'Method Not Allowed', 426: 'Upgrade Required', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
