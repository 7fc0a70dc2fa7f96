// The server's side of the live-reload script: serves media/livereload.js at the reserved
// path, keeps one WebSocket per open page (the `ws` library, as the control channel), sends
// what the developer loop decides (reload, stylesheet, failure), and writes what pages
// relay from their console to the log, bounded in rate and size per page.
//
// A WebSocket rather than Server-Sent Events: the page talks back (its console), and an
// EventSource holds one of the browser's six HTTP/1.1 connections per host for as long as
// the tab is open, so a few tabs would starve the page's own requests.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../log';
import { deviceSummary } from './device';
import { SCRIPT_PATH, SOCKET_PATH } from './inject';

/** A failed reload as the page shows it. */
export interface PageFailure {
  pool: string;
  message: string;
  /** "app.py:3", relative to the pool's folder when inside it. */
  where?: string;
  traceback?: string;
}

export type PageMessage =
  | { t: 'reload' }
  | { t: 'ready' }
  | { t: 'css'; path: string }
  | { t: 'failure'; failure: PageFailure }
  | { t: 'clear' };

const MAX_PAGES = 100;
const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_TEXT = 4000;
/** Console lines per page: a burst of 50, then 20 a second. */
const BURST = 50;
const PER_SECOND = 20;

export interface HubOptions {
  logger: Logger;
  /** Changes when the server restarts: a page seeing another one reloads. */
  instance: string;
  /** Whether every Python pool has a worker taking requests. */
  ready(): boolean;
  /** The failures to show a page that connects now. */
  failure(): PageFailure | undefined;
}

interface Page {
  socket: WebSocket;
  device: string;
  url: string;
  tokens: number;
  refilledAt: number;
  dropped: number;
}

/** The client script's text: media/ beside dist/ (the bundle), or two levels up (sources run by tsx). */
function loadScript(): string {
  for (const candidate of [path.join(__dirname, '..', 'media', 'livereload.js'), path.join(__dirname, '..', '..', 'media', 'livereload.js')]) {
    try {
      return readFileSync(candidate, 'utf8');
    } catch {
      // try the next place
    }
  }
  return '/* ServeStack: media/livereload.js is missing from this build; run `npm run build` */';
}

/** Same origin, or no Origin at all (not a browser): another site's page must not read tracebacks. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    const host = new URL(origin).host;
    const forwarded = req.headers['x-forwarded-host'];
    return host === req.headers.host || host === (Array.isArray(forwarded) ? forwarded[0] : forwarded);
  } catch {
    return false; // "null" or garbage: not a page of this origin
  }
}

export class LiveReloadHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  private readonly pages = new Set<Page>();
  private script: Buffer | undefined;
  private reloads = 0;
  private readies = 0;

  constructor(private readonly options: HubOptions) {}

  get pageCount(): number {
    return this.pages.size;
  }

  /**
   * How many changes pages were told of, as an error page of `status` counts them: a 503
   * (no worker could take it) counts "reload" and "ready" (the app came back); a 502 or
   * 504 (this request ended its worker) counts "reload" only, since the replacement
   * being ready changes nothing for that request. The page carries the count it was made
   * at: one that connects after a change it missed reloads at once, one that connects
   * with nothing new waits (no reload loop).
   */
  seen(status: number): number {
    return status === 503 ? this.reloads + this.readies : this.reloads;
  }

  /** Serves the script; true when the request was the reserved path. */
  handleRequest(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    if (pathname !== SCRIPT_PATH && pathname !== SOCKET_PATH) return false;
    if (pathname === SOCKET_PATH) {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade' });
      res.end('the live-reload socket takes WebSocket connections only\n');
      return true;
    }
    this.script ??= Buffer.from(loadScript());
    res.writeHead(200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Content-Length': this.script.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : this.script);
    return true;
  }

  /** Takes the socket of the reserved path; true when it was that path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, pathname: string): boolean {
    if (pathname !== SOCKET_PATH) return false;
    if (!sameOrigin(req) || this.pages.size >= MAX_PAGES) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onPage(ws, req));
    return true;
  }

  broadcast(message: PageMessage): void {
    if (message.t === 'reload') this.reloads++;
    if (message.t === 'ready') this.readies++;
    const text = JSON.stringify(message);
    for (const page of this.pages) page.socket.send(text);
  }

  close(): void {
    for (const page of this.pages) page.socket.close(1001, 'server stopping');
    this.pages.clear();
    this.wss.close();
  }

  private onPage(socket: WebSocket, req: IncomingMessage): void {
    const page: Page = { socket, device: deviceSummary(req.headers['user-agent']), url: '', tokens: BURST, refilledAt: Date.now(), dropped: 0 };
    this.pages.add(page);
    socket.on('message', (data: RawData) => this.onMessage(page, data));
    socket.on('close', () => {
      this.pages.delete(page);
      this.reportDropped(page);
    });
    socket.on('error', () => socket.terminate());
    socket.send(JSON.stringify({ t: 'hello', instance: this.options.instance, reloads: this.reloads, readies: this.readies, ready: this.options.ready(), failure: this.options.failure() }));
  }

  private onMessage(page: Page, data: RawData): void {
    let message: { t?: unknown; level?: unknown; text?: unknown; page?: unknown; dropped?: unknown };
    try {
      message = JSON.parse(data.toString());
    } catch {
      return; // not ours: the script only sends JSON
    }
    if (typeof message.page === 'string') page.url = message.page.slice(0, 500);
    if (message.t !== 'console' || typeof message.text !== 'string') return;
    const now = Date.now();
    page.tokens = Math.min(BURST, page.tokens + ((now - page.refilledAt) / 1000) * PER_SECOND);
    page.refilledAt = now;
    if (typeof message.dropped === 'number' && message.dropped > 0) page.dropped += Math.min(message.dropped, 1e6);
    if (page.tokens < 1) {
      page.dropped++;
      return;
    }
    page.tokens--;
    this.reportDropped(page);
    const level = message.level === 'error' ? 'error' : message.level === 'warn' ? 'warn' : message.level === 'debug' ? 'debug' : 'info';
    const text = message.text.length > MAX_TEXT ? `${message.text.slice(0, MAX_TEXT)}…` : message.text;
    this.options.logger.log(level, 'browser', `${this.where(page)}: ${text}`);
  }

  private reportDropped(page: Page): void {
    if (page.dropped === 0) return;
    this.options.logger.warn('browser', `${this.where(page)}: ${page.dropped} more console message${page.dropped === 1 ? '' : 's'} not relayed (more than ${PER_SECOND} a second)`);
    page.dropped = 0;
  }

  private where(page: Page): string {
    let shown = page.url || 'a page';
    try {
      const u = new URL(page.url);
      shown = u.pathname + u.search;
    } catch {
      // not a URL: shown as sent
    }
    return `${shown} (${page.device})`;
  }
}
