// A route that proxies to a URL (a Vite dev server, another service), with NGINX's
// proxy_pass rule for the path: a target without a path gets the request URI as it
// came; a target with a path ("http://h:1/api/") has the route's prefix replaced by it.
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts } from './headers';
import { sendErrorPage } from './errorPages';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const UPSTREAM_TIMEOUT_MS = 60000; // NGINX's proxy_read_timeout

/** NGINX's rule; it needs the target as written, since URL parsing turns "http://h" into "http://h/". */
export function upstreamPath(rawTarget: string, routePrefix: string, url: string): string {
  const targetPath = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+(\/[^?#]*)?/i.exec(rawTarget)?.[1];
  if (targetPath === undefined) return url;
  return targetPath + url.slice(routePrefix.length);
}

function requestOptions(req: IncomingMessage, rawTarget: string, routePrefix: string, facts: ForwardingFacts): http.RequestOptions {
  const target = new URL(rawTarget);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of upstreamRequestHeaders(req, facts)) {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return {
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 80,
    method: req.method,
    path: upstreamPath(rawTarget, routePrefix, req.url ?? '/'),
    headers,
  };
}

export function forwardToUrl(
  req: IncomingMessage,
  res: ServerResponse,
  rawTarget: string,
  routePrefix: string,
  facts: ForwardingFacts,
  onDone: (status: number, bytes: number) => void,
): void {
  const target = new URL(rawTarget);
  const upstream = http.request({ ...requestOptions(req, rawTarget, routePrefix, facts), agent });
  upstream.setTimeout(UPSTREAM_TIMEOUT_MS, () => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  upstream.on('response', (up) => {
    const pairs: [string, string][] = [];
    for (let i = 0; i < up.rawHeaders.length; i += 2) pairs.push([up.rawHeaders[i], up.rawHeaders[i + 1]]);
    res.writeHead(up.statusCode ?? 502, downstreamResponseHeaders(pairs));
    let bytes = 0;
    up.on('data', (chunk: Buffer) => (bytes += chunk.length));
    up.pipe(res);
    up.on('end', () => onDone(up.statusCode ?? 502, bytes));
    up.on('error', () => res.destroy());
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    const timedOut = error.code === 'ETIMEDOUT';
    sendErrorPage(res, timedOut ? 504 : 502, `${target.origin} ${timedOut ? 'did not answer in time' : `could not be reached (${error.code ?? error.message})`}. Is it running?`);
    onDone(timedOut ? 504 : 502, 0);
  });
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

/** WebSocket (or any Upgrade) pass-through to a URL route: the two sockets are joined. */
export function upgradeToUrl(req: IncomingMessage, socket: Socket, head: Buffer, rawTarget: string, routePrefix: string, facts: ForwardingFacts): void {
  const options = requestOptions(req, rawTarget, routePrefix, facts);
  const headers = options.headers as Record<string, string | string[]>;
  headers.connection = 'Upgrade';
  headers.upgrade = req.headers.upgrade ?? 'websocket';
  const upstream = http.request({ ...options, headers });
  upstream.on('upgrade', (upRes, upSocket, upHead) => {
    let response = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`;
    for (let i = 0; i < upRes.rawHeaders.length; i += 2) response += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`;
    socket.write(response + '\r\n');
    if (upHead.length) socket.write(upHead);
    if (head.length) upSocket.write(head);
    upSocket.pipe(socket).pipe(upSocket);
    upSocket.on('error', () => socket.destroy());
    socket.on('error', () => upSocket.destroy());
  });
  upstream.on('response', (upRes) => {
    socket.end(`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\nConnection: close\r\n\r\n`);
  });
  upstream.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
  upstream.end();
}
