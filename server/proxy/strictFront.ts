// The socket side of strict HTTP/1.1 (the checks themselves are in requestChecks.ts).
// Node answers some refusals on its own, without a request event, an error page or an
// access line, and lets others through; this module takes those paths over:
// - a parser error (clientError) gets the status of requestChecks' one table, the error
//   page, `Connection: close` and an access line; a response already on its way is left
//   to finish, then the connection closes (nothing after a parse error can be trusted);
// - the first bytes of each connection are looked at once for an HTTP/0.9 simple request,
//   which the parser would leave waiting for header fields: it gets a 400 and a close;
// - CONNECT gets 405 (Node would drop the connection without a word);
// - an Upgrade other than WebSocket (h2c…) is replayed to the parser as the plain request
//   it also is (RFC 9110 §7.8 lets a server ignore Upgrade): Node sends every request with
//   `Connection: upgrade` to the 'upgrade' listener once one exists.
// Under TLS the same holds for HTTP/1.1 connections ('secureConnection', after the
// handshake); an HTTP/2 session (ALPN h2) goes straight to Node: its framing is binary and
// nghttp2 checks it.
import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { LimitsConfig } from '../config/types';
import type { Logger } from '../log';
import { accessLine, type AccessRequest } from './accessLog';
import { isHttp2Request } from './http2Compat';
import { rawErrorResponse, sendErrorPage } from './errorPages';
import { socketAddress } from './headers';
import { absoluteTarget, checkRequest, isSimpleRequest, parserErrorRefusal, requestLineOf, type Refusal } from './requestChecks';

export type RefusalRecorder = (status: number) => void;

interface FrontOptions {
  /** The limits in force now (a config change replaces them). */
  limits(): LimitsConfig;
  logger: Logger;
  record: RefusalRecorder;
}

const LOGGED_LINE = 2048; // characters of a refused request line kept in the access log

/**
 * Checks a request head; an absolute-form target (`GET http://host/p HTTP/1.1`) is accepted
 * and rewritten to origin-form, its authority replacing Host (RFC 9112 §3.2.2), so routing,
 * forwarding headers and the app all see the path and that host.
 */
export function admitRequest(req: IncomingMessage, limits: LimitsConfig): Refusal | undefined {
  const url = req.url ?? '';
  // An HTTP/2 request is held to HTTP/1.1's rules of meaning (Host, methods, sizes); its framing is HTTP/2's.
  // (Told by the request object, never by the version: an HTTP/1 request line may claim "HTTP/2.0".)
  const httpVersion = isHttp2Request(req) ? '1.1' : req.httpVersion;
  const refusal = checkRequest({ method: req.method ?? '', url, httpVersion, rawHeaders: req.rawHeaders }, limits);
  if (refusal || url.startsWith('/')) return refusal;
  const absolute = absoluteTarget(url);
  if (!absolute) return undefined; // CONNECT's authority-form: refused by checkRequest already
  req.url = absolute.path;
  const raw = req.rawHeaders;
  let replaced = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'host') {
      raw[i + 1] = absolute.authority;
      replaced = true;
    }
  }
  if (!replaced) raw.push('Host', absolute.authority);
  req.headers.host = absolute.authority;
  return undefined;
}

/** Answers a refused request on its ServerResponse: the error page, and a close when the framing cannot be trusted. */
export function answerRefusal(res: ServerResponse, refusal: Refusal): void {
  if (refusal.close) res.setHeader('Connection', 'close');
  sendErrorPage(res, refusal.status, refusal.reason, refusal.headers);
}

/** RFC 6455 §4.1: a WebSocket opening handshake is a GET whose Upgrade names websocket. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.method === 'GET' && /(?:^|,)\s*websocket\s*(?:,|$)/i.test(req.headers.upgrade ?? '');
}

/** Responses whose request's own body broke the parser: the front answered them with this status. */
const refusedResponses = new WeakMap<ServerResponse, number>();

/** The status the front answered on the socket for this response's request, if it did (for its access line). */
export function refusedStatus(res: ServerResponse): number | undefined {
  return refusedResponses.get(res);
}

export class StrictFront {
  private readonly httpConnection: (socket: Socket) => void;
  /** Connections whose first bytes have not arrived: Node's server does not know them yet. */
  private readonly waiting = new Set<Socket>();
  private readonly answered = new WeakSet<Socket>();

  /**
   * `connectionEvent` is 'connection' for plain HTTP, 'secureConnection' for TLS (an
   * http2 secure server with HTTP/1.1 fallback: its one listener picks by ALPN).
   */
  constructor(
    private readonly server: http.Server | NetServer,
    private readonly options: FrontOptions,
    connectionEvent: 'connection' | 'secureConnection' = 'connection',
  ) {
    const listeners = server.listeners(connectionEvent);
    if (listeners.length !== 1) throw new Error(`expected Node's one HTTP ${connectionEvent} listener, found ${listeners.length}`);
    this.httpConnection = listeners[0] as (socket: Socket) => void;
    server.removeAllListeners(connectionEvent);
    server.on(connectionEvent, (socket: Socket) => this.onConnection(socket));
    server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => this.onClientError(error, socket));
    server.on('connect', (req: IncomingMessage, socket: Socket | ServerResponse) => {
      const refusal = admitRequest(req, options.limits()) ?? { status: 405, reason: 'CONNECT is not allowed here.', close: true };
      // Over HTTP/2, CONNECT is a stream with a response of its own, not a socket.
      if (isHttp2Request(req)) return answerRefusal(socket as ServerResponse, refusal);
      this.refuseOnSocket(req, socket as Socket, refusal);
    });
  }

  /** Closes the connections that never sent a byte (server.close would wait for them). */
  closeWaiting(): void {
    for (const socket of this.waiting) socket.destroy();
    this.waiting.clear();
  }

  /** Answers a refused request that has no ServerResponse (an upgrade, CONNECT) and closes. */
  refuseOnSocket(req: IncomingMessage, socket: Socket, refusal: Refusal): void {
    this.answerOnSocket(socket, refusal, req, undefined, req.method === 'HEAD');
  }

  /**
   * Hands the request back to Node's parser without its upgrade: the head is written again
   * with the Upgrade and HTTP2-Settings fields and their Connection tokens removed, and the
   * socket starts over as a new HTTP connection, so the request reaches the request listener
   * with its body, and the connection can carry more requests.
   */
  replayAsPlainRequest(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const dropped = new Set(['upgrade', 'http2-settings']);
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (dropped.has(name)) continue;
      let value = raw[i + 1];
      if (name === 'connection') {
        value = value.split(',').map((t) => t.trim()).filter((t) => t && !dropped.has(t.toLowerCase())).join(', ');
        if (!value) continue;
      }
      text += `${raw[i]}: ${value}\r\n`;
    }
    socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]));
    this.httpConnection.call(this.server, socket);
  }

  private onConnection(socket: Socket): void {
    if ((socket as TLSSocket).alpnProtocol === 'h2') return void this.httpConnection.call(this.server, socket);
    this.waiting.add(socket);
    const forget = () => {
      this.waiting.delete(socket);
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      socket.off('close', forget);
      socket.off('error', onError);
      socket.off('data', onFirstBytes);
    };
    const onTimeout = () => socket.destroy();
    const onError = () => socket.destroy();
    const onFirstBytes = (chunk: Buffer) => {
      forget();
      const start = chunk.toString('latin1', 0, Math.min(chunk.length, 16384));
      if (isSimpleRequest(start)) {
        this.answerOnSocket(socket, { status: 400, reason: 'HTTP/0.9 simple requests are not served: send an HTTP/1.1 request line ("GET / HTTP/1.1") and a Host header.', close: true }, undefined, requestLineOf(chunk));
        return;
      }
      // Node's listener takes the socket over (and reads it natively from here on); the
      // bytes already read go to its parser first, in this same turn, so none overtakes them.
      this.httpConnection.call(this.server, socket);
      socket.emit('data', chunk);
    };
    socket.setTimeout(this.options.limits().headerTimeoutMs);
    socket.on('timeout', onTimeout);
    socket.on('close', forget);
    socket.on('error', onError);
    socket.on('data', onFirstBytes);
  }

  private onClientError(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
    if (this.answered.has(socket)) return; // the parser repeats its error for each later chunk
    this.answered.add(socket);
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inFlight && (inFlight.headersSent || inFlight.req.complete)) {
      // An answer is on its way (a refusal of this very request), or is owed to an earlier,
      // whole, pipelined request: writing now would corrupt it. Let it finish, then close.
      // (A request whose own body broke the parser gets the answer below instead, like
      // Node's default: its response then closes unfinished, which cancels its upstream.)
      inFlight.shouldKeepAlive = false;
      if (inFlight.writableFinished) socket.destroySoon();
      else inFlight.once('finish', () => socket.destroySoon());
      return;
    }
    const isParserError = typeof error.code === 'string' && (error.code.startsWith('HPE_') || error.code === 'ERR_HTTP_REQUEST_TIMEOUT');
    if (!isParserError || !socket.writable) {
      socket.destroy();
      return;
    }
    const refusal = parserErrorRefusal(error.code, error.rawPacket, this.options.limits());
    if (inFlight) refusedResponses.set(inFlight, refusal.status);
    const line = requestLineOf(error.rawPacket);
    // A request already in flight has its own access line (it ends unfinished, as 499).
    this.answerOnSocket(socket, refusal, undefined, line, line?.startsWith('HEAD ') ?? false, !inFlight);
  }

  private answerOnSocket(socket: Socket, refusal: Refusal, req: AccessRequest | undefined, requestLine: string | undefined, head = false, log = true): void {
    const { bytes, bodyLength } = rawErrorResponse(refusal.status, refusal.reason, refusal.headers, head);
    if (socket.writable) socket.write(bytes);
    socket.destroySoon();
    if (!log) return;
    const now = performance.now();
    const logged = requestLine === undefined ? undefined : requestLine.length > LOGGED_LINE ? `${requestLine.slice(0, LOGGED_LINE)}…` : requestLine;
    this.options.record(refusal.status);
    this.options.logger.log('info', 'access', accessLine(req ?? { httpVersion: '-', headers: {} }, {
      remoteAddr: socketAddress(socket),
      status: refusal.status,
      bytes: bodyLength,
      startedAt: now,
      endedAt: now,
      ...(req ? {} : { requestLine: logged ?? '-' }),
    }));
  }
}
