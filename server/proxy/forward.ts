// Hands one request to an upstream (a Python pool, a command pool or a URL) through the
// seam in server/upstream/types.ts, and owns everything HTTP about it on the proxy's
// side: reading the body first when the route buffers requests, buffering the answer
// for a slow client, retrying an idempotent request once when its worker was lost before
// answering (NGINX's proxy_next_upstream), and turning failure reasons into pages.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyTooLarge, bufferRequestBody, BufferedBody, StreamedBody } from '../upstream/body';
import type { TempFiles } from '../upstream/tempFiles';
import type { BodySource, ResponseSink, Upstream, UpstreamCall, UpstreamFailure, UpstreamRequest } from '../upstream/types';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts } from './headers';
import { sendErrorPage } from './errorPages';
import { ResponseBuffer } from './responseBuffer';
import type { BodySink, ResponseStage, StageContext } from './responseStages';
import { refusedStatus } from './strictFront';
import { atTurnEndForClients } from '../turnEnd';

/** What every request of one route shares: made once per route (server.ts), not per request. */
export interface ForwardOptions {
  routePrefix: string;
  /** Bytes; 0 = no limit. */
  maxBodySize: number;
  /** Read the whole body before submitting (the route's choice, else the upstream's default). */
  requestBuffering: boolean;
  bufferSize: number;
  maxTempFileSize: number;
  tempFiles: TempFiles;
  /** The route's on-the-fly compression (compressionStage); undefined: off. */
  compress?: ResponseStage;
  /** The developer loop's HTML transform (server/devloop/inject.ts); it sees the upstream's bytes, before any compression. */
  transformResponse?: (req: IncomingMessage, sink: ResponseSink, basePath: string | undefined) => ResponseSink;
}

/** What is known of one request's origin (headers.ts), and the SERVER_NAME it was sent to. */
export type ForwardFacts = ForwardingFacts & { serverName: string };

/**
 * Who hears how a forwarded request ended (the server's per-request record). One object
 * with methods, not callbacks: a request made four closures and two objects for this.
 */
export interface ForwardListener {
  /** Once, when the request is over: the status and bytes the client got, the upstream's time, who answered. */
  done(status: number, bytes: number, upstreamMs: number | undefined, worker: string | undefined): void;
  /** Set by forward(): the exchange to tell when the response closes (the listener owns the one 'close' listener). */
  exchange: { closed(): void } | undefined;
}

/** Methods a second worker may run again when the first was lost before it answered. */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD']);
const STATUS_FOR: Record<UpstreamFailure['code'], number> = {
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  LOST: 502,
  UNREACHABLE: 502,
  TIMEOUT: 504,
  BROKEN: 502,
};

export function forward(req: IncomingMessage, res: ServerResponse, upstream: Upstream, options: ForwardOptions, facts: ForwardFacts, listener: ForwardListener): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  // Every field always set, in one order: one shape for every request (no megamorphic reads downstream).
  const request: UpstreamRequest = {
    method: req.method ?? 'GET',
    url,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers: upstreamRequestHeaders(req, facts),
    httpVersion: req.httpVersion,
    scheme: facts.scheme,
    serverName: facts.serverName,
    serverPort: facts.port,
    remoteAddr: facts.remoteAddr,
    remotePort: req.socket.remotePort ?? 0,
    routePrefix: options.routePrefix,
    scriptName: facts.scriptName || undefined,
    body: undefined,
  };
  // The listener reports once (its own guard), also for the paths that answer before an Exchange exists.
  if (!hasBody) return new Exchange(req, res, upstream, request, options, facts, listener).run();
  if (!options.requestBuffering) {
    let exchange: Exchange | undefined;
    request.body = new StreamedBody(req, options.maxBodySize, (error) => exchange?.bodyTooLarge(error));
    exchange = new Exchange(req, res, upstream, request, options, facts, listener);
    return exchange.run();
  }
  void bufferRequestBody(req, options).then((result) => {
    if (res.destroyed || res.writableEnded) {
      // The front answered on the socket (the body's framing broke the parser); or, as NGINX
      // logs it, the client cut its body short (400) or left once it was read (499).
      if (result.ok) result.body.release();
      listener.done(refusedStatus(res) ?? (result.ok ? 499 : 400), 0, undefined, undefined);
      return;
    }
    if (!result.ok) {
      if (result.reason === 'too-large') {
        res.setHeader('Connection', 'close');
        sendErrorPage(res, 413, `The body is larger than the limit of ${result.limit} bytes.`);
        listener.done(413, 0, undefined, undefined);
        return;
      }
      // Cut short by the client: it is gone, and the request never reaches a worker (NGINX logs 400).
      listener.done(400, 0, undefined, undefined);
      res.destroy();
      return;
    }
    request.body = result.body;
    // The upstream sees the length the proxy read, however the client framed it.
    request.headers = request.headers.filter(([name]) => name !== 'content-length');
    request.headers.push(['content-length', String(result.body.length)]);
    new Exchange(req, res, upstream, request, options, facts, listener).run();
  });
}

/** One request's trip through the upstream: up to two attempts, one response. It is the upstream's sink itself (no object of closures per request). */
class Exchange implements ResponseSink {
  private call: UpstreamCall | undefined;
  private buffer: ResponseBuffer | undefined;
  /** Where the answer's body goes: the first stage, or the buffer when no stage wraps it. */
  private body: BodySink | undefined;
  /** Reasons the upstream is held (the buffer is full, a stage is behind); it runs at 0. */
  private holds = 0;
  private attempts = 0;
  private submittedAt = 0;
  private worker: string | undefined;
  private status = 0;
  private over = false;
  /** The body's length when the answer went out whole (complete), with no buffer. */
  private wholeBytes = 0;
  /** Set once the last byte is handed to the client: its access line is written when the response closes. */
  private upstreamMs: number | undefined = undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly upstream: Upstream,
    private readonly request: UpstreamRequest,
    private readonly options: ForwardOptions,
    private readonly facts: ForwardFacts,
    private readonly listener: ForwardListener,
  ) {}

  run(): void {
    this.listener.exchange = this;
    this.attempt();
  }

  /** The response closed (the listener's 'close', which follows 'finish' on the next tick). */
  closed(): void {
    if (this.over) return;
    if (this.res.writableFinished && this.upstreamMs !== undefined) return this.finish(this.status, this.upstreamMs);
    // The client left before the answer was complete (NGINX logs 499), or the front refused its body.
    this.finish(this.res.writableFinished ? this.status : refusedStatus(this.res) ?? 499);
    this.call?.cancel();
    this.body?.abort();
    this.buffer?.release();
  }

  bodyTooLarge(error: BodyTooLarge): void {
    if (this.over) return;
    this.call?.cancel();
    if (!this.res.headersSent) {
      this.res.setHeader('Connection', 'close');
      sendErrorPage(this.res, 413, `The body is larger than the limit of ${error.limit} bytes.`);
      this.finish(413);
    } else {
      this.finish(this.status);
      this.res.destroy();
    }
    this.req.socket.end();
  }

  private attempt(): void {
    this.attempts++;
    this.submittedAt = performance.now();
    // ── the one response transform: the developer loop's script into HTML (before any compression)
    const sink = this.options.transformResponse ? this.options.transformResponse(this.req, this, this.facts.scriptName) : this;
    this.call = this.upstream.submit(this.request, sink);
  }

  // ── ResponseSink (assigned, start, data, complete, end, fail): what the upstream says of its answer
  assigned(who: string): void {
    this.worker = who;
  }

  data(chunk: Buffer): void {
    this.body?.write(chunk);
  }

  /** Sends the head the client gets; returns how to wrap the body when a stage (compression) takes it. */
  private sendHead(status: number, headers: [string, string][]): ((next: BodySink) => BodySink) | undefined {
    this.status = status;
    const compress = this.options.compress;
    if (!compress) {
      this.res.writeHead(status, downstreamResponseHeaders(headers));
      return undefined;
    }
    // The one body stage between the upstream and the buffer: compression (the dev loop's
    // transform ran before, on the upstream's own sink, so it is compressed too).
    const context = new ExchangeStage(this, this.request.method, this.request.url, this.req.headers, status, downstreamResponseHeaders(headers));
    const wrap = compress(context);
    this.status = context.status;
    this.res.writeHead(context.status, context.headers);
    return wrap;
  }

  start(status: number, headers: [string, string][]): void {
    if (this.over) return;
    this.startBody(this.sendHead(status, headers));
  }

  private startBody(wrap: ((next: BodySink) => BodySink) | undefined): void {
    const buffer = new ResponseBuffer(this.res, {
      bufferSize: this.options.bufferSize,
      maxTempFileSize: this.options.maxTempFileSize,
      tempFiles: this.options.tempFiles,
      pauseUpstream: () => this.hold(),
      resumeUpstream: () => this.release(),
    });
    this.buffer = buffer;
    this.body = wrap ? wrap(buffer) : buffer;
  }

  /**
   * The whole answer arrived at once (in one frame from the worker): the upstream is done
   * with it. A small one goes out in one end(), head and body: Node's socket buffer keeps
   * the bytes, which are in memory already. A large one goes through the buffer.
   */
  complete(status: number, headers: [string, string][], body: Buffer | undefined): void {
    if (this.over) return;
    const wrap = this.sendHead(status, headers);
    // Compressed, or larger than the memory a response may hold: through the stage and
    // the buffer, as a streamed answer goes (a slow client's share waits in the temp file).
    if (wrap || (body && body.length > this.options.bufferSize)) {
      this.startBody(wrap);
      if (body) this.body!.write(body);
      this.end();
      return;
    }
    this.releaseBody();
    this.upstreamMs = performance.now() - this.submittedAt;
    this.wholeBytes = body ? body.length : 0;
    // At the turn's end, after the workers' batches (turnEnd.ts); the client may be gone by then.
    atTurnEndForClients(() => {
      if (!this.res.destroyed) this.res.end(body);
    });
  }

  /** Hold the upstream (the buffer is full, a stage is behind); each hold() is matched by one release(). */
  hold(): void {
    if (this.holds++ === 0) this.call?.pause();
  }

  release(): void {
    if (this.holds > 0 && --this.holds === 0) this.call?.resume();
  }

  end(): void {
    if (this.over) return;
    this.releaseBody();
    // Logged when the last byte has left (the close listener), with the time the upstream took.
    this.upstreamMs = performance.now() - this.submittedAt;
    this.body!.end();
  }

  fail(failure: UpstreamFailure): void {
    if (this.over) return;
    if (this.buffer) {
      // Headers (and maybe part of the body) went out: cut, so the client sees it is short.
      this.finish(this.status);
      this.body!.abort();
      this.releaseBody();
      return;
    }
    const body = this.request.body;
    if (!this.upstream.failsOver && failure.code === 'LOST' && this.attempts < 2 && RETRYABLE_METHODS.has(this.request.method) && (!body || body.replayable)) {
      this.attempt();
      return;
    }
    this.releaseBody();
    const status = STATUS_FOR[failure.code];
    sendErrorPage(this.res, status, failure.message, status === 503 ? { 'Retry-After': '2' } : {});
    this.finish(status);
  }

  private finish(status: number, upstreamMs?: number): void {
    if (this.over) return;
    this.over = true;
    this.listener.done(
      status,
      this.buffer ? this.buffer.sentBytes() : Math.max(0, this.wholeBytes - (this.res.writableFinished ? 0 : this.res.writableLength)),
      upstreamMs ?? (this.submittedAt ? performance.now() - this.submittedAt : undefined),
      this.worker,
    );
  }

  private releaseBody(): void {
    const body: BodySource | undefined = this.request.body;
    if (body instanceof BufferedBody) body.release();
  }
}

/** What the compression stage sees of one answer (made only when the route compresses). */
class ExchangeStage implements StageContext {
  constructor(
    private readonly exchange: Exchange,
    readonly method: string,
    readonly url: string,
    readonly requestHeaders: IncomingMessage['headers'],
    public status: number,
    public headers: [string, string][],
  ) {}
  hold(): void {
    this.exchange.hold();
  }
  release(): void {
    this.exchange.release();
  }
}
