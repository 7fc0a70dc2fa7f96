// The HTTP front (NGINX's role): listen, route by longest prefix, then serve a static
// file, hand the request to a pool, or proxy it to a URL. Routes live in one object
// that a config change replaces whole, so a request sees either the old or the new
// routes, never a mix. With "tls" it listens for HTTPS: HTTP/2 and HTTP/1.1 on one port
// (ALPN), both into the same request handler (http2Compat.ts makes an HTTP/2 request
// look like an HTTP/1.1 one to the rest of the proxy).
import http from 'node:http';
import type http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { execFile } from 'node:child_process';
import type { LimitsConfig, ListenConfig, RouteConfig } from '../config/types';
import { ServeStackError } from '../errors';
import type { Logger } from '../log';
import { BalancedUpstream } from '../upstream/balanced';
import { HttpUpstream } from '../upstream/http';
import type { TempFiles } from '../upstream/tempFiles';
import type { Upstream, UpstreamRequest } from '../upstream/types';
import { accessLine, sentBodyLength } from './accessLog';
import { sendErrorPage } from './errorPages';
import { compressionStage } from './compress';
import { forward, type ForwardFacts, type ForwardListener, type ForwardOptions } from './forward';
import { clientAddress, upstreamRequestHeaders } from './headers';
import { RateLimiter } from './rateLimit';
import { createRouter, type Router } from './router';
import { createStaticHandler, type StaticHandler } from './static';
import { StrictFront, admitRequest, answerRefusal, isWebSocketUpgrade } from './strictFront';
import { tappedMessageClasses } from './tappedMessages';
import { resolveMount, type FrontTrust } from './trustedFront';
import { ExtraListener } from './extraListener';
import type { DevLoopFront } from '../devloop/devLoop';
import { http2Classes } from './http2Compat';
import { wallTimeOf } from '../wallClock';

/** A certificate chain and its key (PEM), for HTTPS. */
export interface ListenerCertificate {
  cert: string;
  key: string;
}

/** The HTTP/1.1 options both listeners share (the TLS one takes them as properties: see ProxyServer). */
function http1Options(limits: LimitsConfig) {
  return {
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headerTimeoutMs,
    // Node checks headersTimeout on this tick (default 30 s: a 10 s limit fired after up to 40 s).
    connectionsCheckingInterval: 1000,
    // Long uploads and streamed responses are the app's business; the pool's timeout bounds them.
    requestTimeout: 0,
    keepAliveTimeout: 65000,
    // Strict parsing even when NODE_OPTIONS carries --insecure-http-parser.
    insecureHTTPParser: false,
    // Host is checked in requestChecks, so a request without one gets the error page and an access line.
    requireHostHeader: false,
  };
}

export interface ProxyRoutes {
  router: Router;
  statics: Map<number, StaticHandler>; // by route index
  limiters: Map<number, RateLimiter>;
  /** Pools by name, URL targets by route index: every upstream behind one interface. */
  pools: Map<string, Upstream>;
  urls: Map<number, Upstream>;
  limits: LimitsConfig;
  /** Each route's ForwardOptions once made (server.ts forwardOptions), with the dev loop they were made for. */
  forwarding: Map<number, { options: ForwardOptions; devLoop: DevLoopFront | undefined }>;
}

/** What the proxy knows of a request once it is done (the metrics and the request inspector read it). */
export interface RequestRecord {
  route: string;
  pool: string | undefined;
  status: number;
  ms: number;
  bytes: number;
  upstreamMs?: number;
  worker?: string;
  req: IncomingMessage;
  res: ServerResponse;
}
/**
 * Called once per request when it is done. `tap`, when set, is called as the request
 * arrives, before anything reads it (the inspector copies the bodies as they pass).
 */
export type RequestRecorder = ((record: RequestRecord) => void) & {
  tap?: (req: IncomingMessage, res: ServerResponse, arrivedPerf: number) => void;
  /** A request the front refused on the socket, before any request object existed (metrics only). */
  refused?: (status: number) => void;
};

export function buildRoutes(routes: RouteConfig[], pools: Map<string, Upstream>, limits: LimitsConfig, logger: Logger): ProxyRoutes {
  const statics = new Map<number, StaticHandler>();
  const limiters = new Map<number, RateLimiter>();
  const urls = new Map<number, Upstream>();
  for (const route of routes) {
    if (route.kind === 'proxy') {
      urls.set(route.index, route.targets.length > 1 ? new BalancedUpstream(route.path, route.targets, route.balance) : HttpUpstream.toUrl(route.target));
    }
    if (route.kind === 'static') {
      statics.set(route.index, createStaticHandler(route.root, { onError: (err) => logger.error('server', `static ${route.path}: ${(err as Error).message}`), compress: route.compress }));
    }
    if (route.rateLimit) limiters.set(route.index, new RateLimiter(route.rateLimit.count, route.rateLimit.perMs));
  }
  return { router: createRouter(routes), statics, limiters, pools, urls, limits, forwarding: new Map() };
}

export class ProxyServer {
  private readonly server: http.Server | http2.Http2SecureServer;
  private readonly front: StrictFront;
  /** Open HTTP/2 sessions: close() sends each a GOAWAY, then ends what is left at the deadline. */
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  readonly scheme: 'http' | 'https';
  private inFlight = 0;
  /** Requests and upgrades that have arrived, ever (idleHeap.ts watches it move). */
  requestsSeen = 0;
  private drainWaiters: Array<() => void> = [];
  /** The last Host header seen, and its SERVER_NAME (serverNameOf). */
  private lastHost = '';
  private lastServerName = '';
  private readonly poolExtras = new Map<string, { pool: string }>();
  address: { host: string; port: number } | undefined;
  /** Whose forwarding headers to believe, and a path prefix to serve under (trustedFront.ts); read per request. */
  trust: FrontTrust = {};
  /** More addresses on the same port ("Serve on my network"): their connections go to the same server. */
  private readonly extraListeners: ExtraListener[] = [];
  /** The developer loop (server/devloop): its reserved path and the HTML transform; undefined outside development. */
  devLoop: DevLoopFront | undefined;

  constructor(
    public routes: ProxyRoutes,
    private readonly logger: Logger,
    private readonly record: RequestRecorder,
    private readonly tempFiles: TempFiles,
    tls?: ListenerCertificate,
  ) {
    this.scheme = tls ? 'https' : 'http';
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res);
    if (tls) {
      const { http2: h2, Http2Request, Http2Response } = http2Classes();
      const server = h2.createSecureServer({
        cert: tls.cert,
        key: tls.key,
        allowHTTP1: true, // ALPN offers h2, then http/1.1; a client without ALPN gets HTTP/1.1
        minVersion: 'TLSv1.2',
        Http2ServerRequest: Http2Request,
        Http2ServerResponse: Http2Response,
        // The inspector sees HTTP/1.1 bodies pass through these (no per-request patching).
        Http1IncomingMessage: tappedMessageClasses.IncomingMessage,
        Http1ServerResponse: tappedMessageClasses.ServerResponse,
        // A header block as large as HTTP/1.1's limit (HPACK-decoded size, as nghttp2 counts it).
        maxSendHeaderBlockLength: Math.max(routes.limits.maxHeaderSize, 16384),
        settings: { maxHeaderListSize: Math.max(routes.limits.maxHeaderSize, 16384) },
      } as http2.SecureServerOptions, onRequest as never);
      // The HTTP/1.1 side reads these as properties of the server (Node's http2 has no options for them).
      Object.assign(server, http1Options(routes.limits));
      server.on('session', (session: http2.ServerHttp2Session) => {
        this.sessions.add(session);
        session.on('close', () => this.sessions.delete(session));
        session.on('error', () => session.destroy());
      });
      this.server = server;
    } else {
      // The inspector sees bodies pass through these classes (no per-request patching).
      this.server = http.createServer({ ...tappedMessageClasses, ...http1Options(routes.limits) }, onRequest);
    }
    // Expect: 100-continue is the proxy's to answer: 413 for a declared body over the limit, else 100.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, true));
    // Node would keep only its first 2000 fields, silently; requestChecks counts them all (maxHeaderSize bounds them).
    (this.server as http.Server).maxHeadersCount = 0;
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.front = new StrictFront(this.server, {
      limits: () => this.routes.limits,
      logger,
      record: (status) => record.refused?.(status),
    }, tls ? 'secureConnection' : 'connection');
  }

  /** A renewed certificate: new handshakes get it, open connections keep theirs. */
  setCertificate(tls: ListenerCertificate): void {
    if (this.server instanceof http.Server) throw new Error('setCertificate on a plain HTTP listener');
    this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  /**
   * The limits the listener holds itself (the rest are read per request from the routes).
   * Node reads `headersTimeout` on every connection check and `maxHeaderSize` when it
   * accepts a connection: the first applies at once, the second to new connections.
   */
  applyLimits(limits: LimitsConfig): void {
    const server = this.server as http.Server;
    server.headersTimeout = limits.headerTimeoutMs;
    // A documented createServer option that @types/node does not list as a property.
    (server as http.Server & { maxHeaderSize?: number }).maxHeaderSize = limits.maxHeaderSize;
  }

  /** Never claims a port before listen succeeds; an unpinned port moves on to the next free one. */
  async listen(listen: ListenConfig): Promise<{ host: string; port: number; url: string }> {
    const attempts = listen.pinned || listen.port === 0 ? 1 : 20;
    for (let i = 0; i < attempts; i++) {
      const port = listen.port === 0 ? 0 : listen.port + i;
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (error: Error) => {
            this.server.off('listening', onListening);
            reject(error);
          };
          const onListening = () => {
            this.server.off('error', onError);
            resolve();
          };
          this.server.once('error', onError);
          this.server.once('listening', onListening);
          this.server.listen(port, listen.host);
        });
        const bound = this.server.address() as { address: string; port: number };
        if (i > 0) this.logger.warn('server', `port ${listen.port} is in use; serving on ${bound.port} instead (pin a port with --port or "listen" to make this an error)`);
        this.address = { host: listen.host, port: bound.port };
        const shownHost = listen.host.includes(':') ? `[${listen.host}]` : listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host;
        return { host: listen.host, port: bound.port, url: `${this.scheme}://${shownHost}:${bound.port}/` };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' && i + 1 < attempts) continue;
        if (code === 'EADDRINUSE') {
          const holder = await portHolder(port);
          throw new ServeStackError('PORT_IN_USE', `port ${port} on ${listen.host} is already in use${holder ? ` by ${holder}` : ''}`, {
            hint: `stop that program, or choose another port with --port or "listen" in servestack.json`,
            cause: error,
          });
        }
        throw new ServeStackError('LISTEN_FAILED', `could not listen on ${listen.host}:${port}: ${(error as Error).message}`, {
          hint: code === 'EACCES' ? 'ports below 1024 need privileges; use a port above 1024' : code === 'EADDRNOTAVAIL' ? `${listen.host} is not an address of this machine` : undefined,
          cause: error,
        });
      }
    }
    throw new ServeStackError('PORT_IN_USE', `ports ${listen.port}–${listen.port + attempts - 1} are all in use`, { hint: 'choose a port with --port' });
  }

  /** Also accept connections on `host` at the bound port (after listen), e.g. the LAN address. */
  async listenAlso(host: string): Promise<{ host: string; port: number; url: string }> {
    if (!this.address) throw new Error('listenAlso before listen');
    const extra = new ExtraListener(this.server);
    const port = await extra.listen(host, this.address.port);
    this.extraListeners.push(extra);
    return { host, port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/` };
  }

  /** Stop accepting; let in-flight requests finish within graceMs; then close every connection. */
  async close(graceMs: number): Promise<void> {
    for (const extra of this.extraListeners.splice(0)) extra.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    (this.server as http.Server).closeIdleConnections(); // the TLS listener has it too (its HTTP/1.1 side)
    this.front.closeWaiting();
    // GOAWAY: no new streams; the open ones finish, then the session closes by itself.
    for (const session of this.sessions) session.close();
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    // The HTTP/1.1 connections of either listener (Node tracks them for the TLS one too).
    http.Server.prototype.closeAllConnections.call(this.server as http.Server);
    for (const session of this.sessions) session.destroy();
    await closed;
  }

  /** SERVER_NAME from a Host header: its name without port or brackets; the last one is kept, as clients send the same Host again and again. */
  private serverNameOf(host: string): string {
    if (host !== this.lastHost) {
      this.lastHost = host;
      this.lastServerName = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    }
    return this.lastServerName;
  }

  /** One request ended (its response closed): the drain in close() waits for the last. */
  requestClosed(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.drainWaiters.length) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** A request's access record and line, once (RequestTurn.done). */
  logRequest(turn: RequestTurn, status: number, bytes: number, upstreamMs: number | undefined, worker: string | undefined): void {
    const { req, res, started, remoteAddr, routePath, poolName } = turn;
    const ended = performance.now();
    this.record({ route: routePath, pool: poolName, status, ms: ended - started, bytes, upstreamMs, worker, req, res });
    // One clock reading serves the record, the line's time and the log's (wallClock.ts).
    const wallTime = wallTimeOf(ended);
    const line = accessLine(req, { remoteAddr, status, bytes, startedAt: started, endedAt: ended, upstreamMs, worker, wallTime });
    this.logger.log('info', 'access', line, poolName ? this.poolExtra(poolName) : undefined, wallTime);
  }

  /** The log's `{ pool }` for a pool's access lines, one object per pool name (not one per line). */
  private poolExtra(pool: string): { pool: string } {
    let extra = this.poolExtras.get(pool);
    if (!extra) this.poolExtras.set(pool, (extra = { pool }));
    return extra;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    this.requestsSeen++;
    const started = performance.now();
    this.record.tap?.(req, res, started);
    const refusal = admitRequest(req, this.routes.limits); // before anything reads the URL: it may be rewritten from absolute-form
    this.inFlight++;
    const routes = this.routes;
    const remoteAddr = clientAddress(req);
    const turn = new RequestTurn(this, req, res, started, remoteAddr);
    res.on('close', () => turn.closed());
    if (refusal) return answerRefusal(res, refusal);
    const mount = resolveMount(req.url ?? '/', remoteAddr, req.headers, this.trust);
    if (mount.kind === 'redirect') {
      res.writeHead(301, { Location: mount.location, 'Content-Length': 0 });
      return void res.end();
    }
    if (mount.url !== req.url) req.url = mount.url; // the routes (and the app) see the path below the mount
    this.devLoop?.errorPages(req, res, mount.scriptName);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);

    if (pathname[0] !== '/') return sendErrorPage(res, 400, 'The request target must be a path starting with "/".');
    if (this.devLoop?.handleRequest(req, res, pathname)) return;
    const match = routes.router.match(pathname);
    if (!match) return sendErrorPage(res, 404, `No route matches ${pathname}. Add one to "routes" in servestack.json.`);
    const route = match.route;
    turn.routePath = route.path;
    if (match.redirect) {
      res.writeHead(301, { Location: match.redirect + (q < 0 ? '' : url.slice(q)), 'Content-Length': 0 });
      return void res.end();
    }
    const limiter = routes.limiters.get(route.index);
    if (limiter) {
      const wait = limiter.take(remoteAddr);
      if (wait > 0) return sendErrorPage(res, 429, undefined, { 'Retry-After': String(wait) });
    }
    const maxBodySize = route.maxBodySize ?? routes.limits.maxBodySize;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (route.kind !== 'static' && maxBodySize > 0 && declared > maxBodySize) {
      // Before any upstream sees anything, and without reading the body: the connection closes.
      res.setHeader('Connection', 'close');
      sendErrorPage(res, 413, `The body is ${declared} bytes; the limit here is ${maxBodySize} bytes.`);
      req.socket.end();
      return;
    }
    if (expectsContinue) res.writeContinue();
    if (route.kind === 'static') {
      routes.statics.get(route.index)!.handle(req, res, match.rest, this.devLoop?.staticPages(req, mount.scriptName));
      return;
    }
    const upstream = route.kind === 'pool' ? routes.pools.get(route.pool) : routes.urls.get(route.index);
    if (route.kind === 'pool') turn.poolName = route.pool;
    if (!upstream) return sendErrorPage(res, 502, `The pool '${turn.poolName}' is not running.`);
    const host = req.headers.host;
    const facts: ForwardFacts = {
      remoteAddr,
      scheme: mount.claims?.proto ?? this.scheme,
      host,
      port: this.address?.port ?? 0,
      scriptName: mount.scriptName,
      claims: mount.claims,
      serverName: host ? this.serverNameOf(host) : this.address?.host ?? 'localhost',
    };
    turn.forwarded = true;
    forward(req, res, upstream, this.forwardOptions(routes, route, upstream, maxBodySize), facts, turn);
  }

  /** A route's ForwardOptions, made on its first request and kept with its routes (a config change brings new ones). */
  private forwardOptions(routes: ProxyRoutes, route: RouteConfig, upstream: Upstream, maxBodySize: number): ForwardOptions {
    const made = routes.forwarding.get(route.index);
    if (made && made.devLoop === this.devLoop) return made.options;
    const devLoop = this.devLoop;
    const options: ForwardOptions = {
      routePrefix: route.path,
      maxBodySize,
      requestBuffering: route.requestBuffering ?? upstream.buffersRequestsByDefault,
      bufferSize: routes.limits.bufferSize,
      maxTempFileSize: routes.limits.maxTempFileSize,
      tempFiles: this.tempFiles,
      compress: route.compress ? compressionStage(route.compress) : undefined,
      transformResponse: devLoop?.transform,
    };
    routes.forwarding.set(route.index, { options, devLoop });
    return options;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.requestsSeen++;
    const refusal = admitRequest(req, this.routes.limits);
    if (refusal) return this.front.refuseOnSocket(req, socket, refusal);
    if (!isWebSocketUpgrade(req)) return this.front.replayAsPlainRequest(req, socket, head);
    socket.on('error', () => socket.destroy());
    const mount = resolveMount(req.url ?? '/', clientAddress(req), req.headers, this.trust);
    if (mount.kind === 'mounted') req.url = mount.url;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // The live-reload socket is the server's own, before any route's upgrade.
    if (this.devLoop?.handleUpgrade(req, socket, head, q < 0 ? url : url.slice(0, q))) return;
    const match = this.routes.router.match(q < 0 ? url : url.slice(0, q));
    const route = match?.route;
    const upstream = route?.kind === 'pool' ? this.routes.pools.get(route.pool) : route?.kind === 'proxy' ? this.routes.urls.get(route.index) : undefined;
    if (route && upstream?.upgrade) {
      const started = performance.now();
      const remoteAddr = clientAddress(req);
      const poolName = route.kind === 'pool' ? route.pool : undefined;
      // One access line per WebSocket, when it ends (or is refused): its status, duration and bytes.
      upstream.upgrade(this.upgradeRequest(req, route.path), socket, head, ({ status, bytes, worker }) => {
        const line = accessLine(req, { remoteAddr, status, bytes, startedAt: started, endedAt: performance.now(), worker });
        this.logger.log('info', 'access', line, poolName ? { pool: poolName } : {});
      });
      return;
    }
    const body = 'WebSockets are proxied only to URLs and command pools so far\n';
    socket.end(`HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  }

  private upgradeRequest(req: IncomingMessage, routePrefix: string): UpstreamRequest {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const remoteAddr = clientAddress(req);
    const host = req.headers.host;
    const facts = { remoteAddr, scheme: this.scheme, host, port: this.address?.port ?? 0 };
    return {
      method: req.method ?? 'GET',
      url,
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: upstreamRequestHeaders(req, facts),
      httpVersion: req.httpVersion,
      scheme: this.scheme,
      serverName: host ?? this.address?.host ?? 'localhost',
      serverPort: facts.port,
      remoteAddr,
      remotePort: req.socket.remotePort ?? 0,
      routePrefix,
      body: undefined,
      upgrade: req.headers.upgrade ?? 'websocket',
    };
  }
}

/**
 * One request from arrival to its access line: what the line needs, in one object with
 * one 'close' listener (a request had two listeners and four closures for this).
 */
class RequestTurn implements ForwardListener {
  routePath = '-';
  poolName: string | undefined = undefined;
  /** A forwarded request is logged by its exchange (forward.ts), which knows what the client could read. */
  forwarded = false;
  exchange: { closed(): void } | undefined = undefined;
  private logged = false;

  constructor(
    private readonly server: ProxyServer,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly started: number,
    readonly remoteAddr: string,
  ) {}

  done(status: number, bytes: number, upstreamMs: number | undefined, worker: string | undefined): void {
    if (this.logged) return;
    this.logged = true;
    this.server.logRequest(this, status, bytes, upstreamMs, worker);
  }

  closed(): void {
    if (this.exchange) this.exchange.closed();
    else if (!this.forwarded) this.done(this.res.writableFinished ? this.res.statusCode : 499, sentBodyLength(this.req, this.res), undefined, undefined);
    this.server.requestClosed();
  }
}

/** Best effort, Linux only: which program holds a TCP port, for the error message. */
function portHolder(port: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile('ss', ['-Hltnp', `sport = :${port}`], { timeout: 1000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(stdout);
      resolve(m ? `${m[1]} (pid ${m[2]})` : undefined);
    });
  });
}
