// An upstream spoken to over HTTP: a URL route (a Vite dev server, another service) or a
// command pool's program on $PORT. NGINX's proxy_pass rule for the path: a target
// without a path gets the request URI as it came; a target with a path
// ("http://h:1/api/") has the route's prefix replaced by it.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { ResponseSink, Upstream, UpstreamCall, UpstreamFailure, UpstreamRequest, UpgradeOutcome } from './types';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
/** NGINX's proxy_read_timeout. */
const READ_TIMEOUT_MS = 60000;
/** NGINX's proxy_connect_timeout as exported (mapping.ts CONNECT_TIMEOUT): a member that never accepts is failed over. */
const CONNECT_TIMEOUT_MS = 5000;

/** NGINX's rule; it needs the target as written, since URL parsing turns "http://h" into "http://h/". */
export function upstreamPath(rawTarget: string, routePrefix: string, url: string): string {
  const targetPath = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+(\/[^?#]*)?/i.exec(rawTarget)?.[1];
  if (targetPath === undefined) return url;
  return targetPath + url.slice(routePrefix.length);
}

function requestOptions(request: UpstreamRequest, rawTarget: string): http.RequestOptions {
  const target = new URL(rawTarget.replace(/^ws/i, 'http'));
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of request.headers) {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return {
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 80,
    method: request.method,
    path: upstreamPath(rawTarget, request.routePrefix, request.url),
    headers,
  };
}

/** Where the requests go: a fixed URL, or (a command pool) one known once its program listens. */
export type TargetSource = () => Promise<string | { failure: UpstreamFailure }>;

export class HttpUpstream implements Upstream {
  readonly buffersRequestsByDefault = false;

  constructor(readonly name: string, private readonly target: TargetSource, private readonly who: string) {}

  static toUrl(rawTarget: string): HttpUpstream {
    return new HttpUpstream(rawTarget, () => Promise.resolve(rawTarget), '-');
  }

  submit(request: UpstreamRequest, sink: ResponseSink): UpstreamCall {
    let upstreamReq: http.ClientRequest | undefined;
    let response: http.IncomingMessage | undefined;
    let cancelled = false;
    let started = false;
    let done = false;
    const fail = (failure: UpstreamFailure) => {
      if (done || cancelled) return;
      done = true;
      sink.fail(started ? { ...failure, code: 'BROKEN' } : failure);
    };
    void this.target().then((target) => {
      if (cancelled) return;
      if (typeof target !== 'string') return fail(target.failure);
      const origin = new URL(target.replace(/^ws/i, 'http')).origin;
      sink.assigned(this.who);
      const req = http.request({ ...requestOptions(request, target), agent });
      upstreamReq = req;
      req.setTimeout(READ_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.once('socket', (socket) => {
        if (!socket.connecting) return; // a kept-alive connection
        const timer = setTimeout(() => req.destroy(Object.assign(new Error('connect timeout'), { code: 'ECONNECTTIMEOUT' })), CONNECT_TIMEOUT_MS);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.on('response', (res) => {
        response = res;
        const pairs: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
        started = true;
        sink.start(res.statusCode ?? 502, pairs);
        res.on('data', (chunk: Buffer) => sink.data(chunk));
        res.on('end', () => {
          if (done || cancelled) return;
          done = true;
          sink.end();
        });
        res.on('error', () => fail({ code: 'BROKEN', message: `${origin} broke off its answer` }));
        res.on('aborted', () => fail({ code: 'BROKEN', message: `${origin} broke off its answer` }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ETIMEDOUT') return fail({ code: 'TIMEOUT', message: `${origin} did not answer within ${READ_TIMEOUT_MS / 1000}s` });
        if (error.code === 'ECONNECTTIMEOUT') return fail({ code: 'UNREACHABLE', message: `${origin} did not accept a connection within ${CONNECT_TIMEOUT_MS / 1000}s` });
        const connect = error.code === 'ECONNREFUSED' || error.code === 'ENOTFOUND' || error.code === 'EHOSTUNREACH' || error.code === 'EADDRNOTAVAIL';
        fail({ code: connect ? 'UNREACHABLE' : 'LOST', message: `${origin} could not be reached (${error.code ?? error.message}). Is it running?` });
      });
      if (!request.body) return void req.end();
      let waiting = false;
      const reader = request.body.open({
        chunk: (data) => {
          if (!req.write(data) && !waiting) {
            waiting = true;
            reader.pause();
            req.once('drain', () => {
              waiting = false;
              reader.resume();
            });
          }
        },
        end: () => req.end(),
        error: () => req.destroy(),
      });
      req.once('close', () => reader.close());
    });
    return {
      cancel: () => {
        cancelled = true;
        upstreamReq?.destroy();
      },
      pause: () => response?.pause(),
      resume: () => response?.resume(),
    };
  }

  /**
   * WebSocket (or any Upgrade) pass-through: the two sockets are joined. `done` gets how
   * it ended (the access line). `reached` says whether the upstream answered (for
   * health); returning true on a failure means the caller takes the client's socket
   * elsewhere, so nothing is written to it and `done` is not called.
   */
  upgrade(request: UpstreamRequest, socket: Socket, head: Buffer, done?: (outcome: UpgradeOutcome) => void, reached?: (ok: boolean) => boolean | void): void {
    const refuse = (status: number, line: string) => {
      socket.end(`HTTP/1.1 ${line}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      done?.({ status, bytes: 0 });
    };
    void this.target().then((target) => {
      if (typeof target !== 'string') return refuse(503, '503 Service Unavailable');
      const options = requestOptions(request, target);
      const headers = options.headers as Record<string, string | string[]>;
      headers.connection = 'Upgrade';
      headers.upgrade = request.upgrade ?? 'websocket';
      const upstream = http.request({ ...options, headers });
      upstream.on('upgrade', (upRes, upSocket, upHead) => {
        reached?.(true);
        let response = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`;
        for (let i = 0; i < upRes.rawHeaders.length; i += 2) response += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`;
        socket.write(response + '\r\n');
        const handshakeBytes = socket.bytesWritten;
        socket.once('close', () => done?.({ status: upRes.statusCode ?? 101, bytes: Math.max(0, socket.bytesWritten - handshakeBytes) }));
        if (upHead.length) socket.write(upHead);
        if (head.length) upSocket.write(head);
        upSocket.pipe(socket).pipe(upSocket);
        upSocket.on('error', () => socket.destroy());
        socket.on('error', () => upSocket.destroy());
      });
      upstream.on('response', (upRes) => {
        reached?.(true);
        socket.end(`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\nConnection: close\r\n\r\n`);
        done?.({ status: upRes.statusCode ?? 502, bytes: 0 });
      });
      upstream.on('error', () => {
        if (reached?.(false) === true) return; // the caller tries elsewhere
        refuse(502, '502 Bad Gateway');
      });
      upstream.end();
    });
  }
}
