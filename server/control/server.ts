// The control channel's server: an HTTP server on loopback whose WebSocket endpoint,
// /control, streams the target's events and takes commands (docs/control-protocol.md);
// it also serves the dashboard page behind the token (dashboardPage.ts), whose own socket
// is /dashboard/control. Every check on who may connect happens on the upgrade request,
// before a WebSocket exists (auth.ts). A slow client never slows the server: its metrics,
// log and requests events are dropped while its send buffer is full, and a client that
// cannot even take the rest is cut off.
import { createServer, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { CONTROL_PATH, CONTROL_SUBPROTOCOL, type ControlEvent, type LogLine } from '../protocol';
import { checkUpgrade, generateToken, type Refusal } from './auth';
import { createDashboardPage } from './dashboardPage';
import { errorReply, handleCommandText } from './handlers';
import type { Metrics } from './metrics';
import type { ControlTarget } from './target';

export interface ControlServerOptions {
  /** A loopback address to listen on: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  /** Use this token instead of a generated one (e.g. one the spawning process chose); ≥ 32 of [A-Za-z0-9_-]. */
  token?: string;
  /** More browser origins that may connect (e.g. the proxy's origin when it serves the dashboard page). */
  allowedOrigins?: readonly string[];
  /** When given, sampled once a second and streamed as `metrics` events. */
  metrics?: Metrics;
  /** Where the channel reports what happens to it (refused clients, failed stop). */
  onLog?: (level: LogLine['level'], text: string) => void;
}

export interface ControlServer {
  port: number;
  token: string;
  /** ws://127.0.0.1:PORT/control */
  url: string;
  /** Clients connected now. */
  clientCount(): number;
  /** Close every client (1001, "server stopping") and the listener. */
  close(): Promise<void>;
}

/** Above this many buffered bytes a client gets no metrics or log events until it catches up. */
export const SOFT_BUFFER_LIMIT = 1 << 20;
/** Above this a client is cut off: it does not read even the events that cannot be dropped. */
export const HARD_BUFFER_LIMIT = 32 << 20;
const MAX_MESSAGE_BYTES = 8 << 20;
const PING_INTERVAL_MS = 30_000;
const CLOSE_DEADLINE_MS = 1000;

interface Client {
  ws: WebSocket;
  alive: boolean;
  /** Events dropped since the client last kept up. */
  dropped: number;
}

function loopbackHost(host: string | undefined): { listen: string; url: string } {
  switch (host ?? '127.0.0.1') {
    case '127.0.0.1':
    case 'localhost':
      return { listen: '127.0.0.1', url: '127.0.0.1' };
    case '::1':
    case '[::1]':
      return { listen: '::1', url: '[::1]' };
    default:
      throw new Error(`the control channel listens on loopback only (127.0.0.1 or ::1), not ${host}`);
  }
}

function refuse(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.reason}\n`;
  const lines = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
  ];
  if (refusal.status === 401) lines.push('WWW-Authenticate: Bearer realm="servestack"');
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  socket.once('finish', () => socket.destroy());
}

export async function startControlServer(target: ControlTarget, opts: ControlServerOptions = {}): Promise<ControlServer> {
  const { listen, url: urlHost } = loopbackHost(opts.host);
  if (opts.token !== undefined && !/^[A-Za-z0-9_-]{32,}$/.test(opts.token)) {
    throw new Error('a control token needs at least 32 characters of [A-Za-z0-9_-]');
  }
  const token = opts.token ?? generateToken();
  const log = opts.onLog ?? (() => undefined);
  const clients = new Set<Client>();
  let port = 0;
  let closing: Promise<void> | undefined;

  const page = createDashboardPage({ port: () => port, token });
  const http = createServer((req, res) => {
    if (page.handle(req, res)) return;
    const path = (req.url ?? '').split('?')[0];
    const status = path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD') ? 200 : path === CONTROL_PATH ? 426 : 404;
    const body = status === 200 ? 'ok\n' : status === 426 ? `connect with a WebSocket to ${CONTROL_PATH}\n` : 'not found\n';
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: MAX_MESSAGE_BYTES,
    // Select our version; never echo the token subprotocol.
    handleProtocols: (protocols) => (protocols.has(CONTROL_SUBPROTOCOL) ? CONTROL_SUBPROTOCOL : false),
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log('debug', `control: a client's socket failed: ${err.message}`));
    if (closing) {
      refuse(socket, { status: 403, reason: 'the server is stopping' });
      return;
    }
    const refusal = checkUpgrade(req.url, req.headers, { port, token, allowedOrigins: opts.allowedOrigins, session: page.session });
    if (refusal) {
      log('warn', `control: refused a client (${refusal.status}): ${refusal.reason}`);
      refuse(socket, refusal);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function send(client: Client, data: string, droppable: boolean): void {
    const { ws } = client;
    if (ws.readyState !== WebSocket.OPEN) return;
    const buffered = ws.bufferedAmount;
    if (buffered > HARD_BUFFER_LIMIT) {
      log('warn', 'control: cut off a client that does not read its events');
      ws.terminate();
      return;
    }
    if (droppable && buffered > SOFT_BUFFER_LIMIT) {
      client.dropped++;
      return;
    }
    if (client.dropped > 0 && buffered <= SOFT_BUFFER_LIMIT) {
      const notice: ControlEvent = {
        type: 'log',
        line: { time: Date.now(), level: 'warn', source: 'server', text: `control: ${client.dropped} metrics/log events were dropped for this client while it read too slowly` },
      };
      client.dropped = 0;
      ws.send(JSON.stringify(notice));
    }
    ws.send(data);
  }

  function broadcast(event: ControlEvent): void {
    if (clients.size === 0) return;
    const data = JSON.stringify(event);
    const droppable = event.type === 'metrics' || event.type === 'log' || event.type === 'requests';
    for (const client of clients) send(client, data, droppable);
  }

  function onConnection(ws: WebSocket): void {
    const client: Client = { ws, alive: true, dropped: 0 };
    ws.on('error', (err) => log('debug', `control: a client's connection failed: ${err.message}`));
    try {
      ws.send(JSON.stringify({ type: 'snapshot', snapshot: target.snapshot() } satisfies ControlEvent));
    } catch (err) {
      log('error', `control: could not take a snapshot for a new client: ${(err as Error).message}`);
      ws.close(1011, 'snapshot failed');
      return;
    }
    // Added in the same turn as the snapshot, so no event falls between the two.
    clients.add(client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => clients.delete(client));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        send(client, JSON.stringify(errorReply(0, 'CONTROL_BAD_COMMAND', 'commands are JSON text messages, not binary')), false);
        return;
      }
      void handleCommandText(data.toString(), target).then(({ reply, afterReply }) => {
        send(client, JSON.stringify(reply), false);
        if (afterReply) {
          // After the reply is queued: stop may close this channel, and the reply must get out first.
          setImmediate(() => {
            afterReply().catch((err: unknown) => log('error', `control: stop failed: ${(err as Error).message}`));
          });
        }
      });
    });
  }

  const unsubscribe = target.onEvent(broadcast);

  const timers: NodeJS.Timeout[] = [];
  if (opts.metrics) {
    const metrics = opts.metrics;
    timers.push(setInterval(() => broadcast({ type: 'metrics', metrics: metrics.sample() }), 1000));
  }
  // The inspector's new requests, once a second in one event (a busy server answers thousands).
  timers.push(
    setInterval(() => {
      const fresh = target.requestInspector?.()?.takeFresh();
      if (fresh && fresh.length > 0) broadcast({ type: 'requests', requests: fresh });
    }, 1000),
  );
  timers.push(
    setInterval(() => {
      for (const client of clients) {
        if (!client.alive) {
          client.ws.terminate();
          continue;
        }
        client.alive = false;
        client.ws.ping();
      }
    }, PING_INTERVAL_MS),
  );
  for (const t of timers) t.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen({ host: listen, port: 0, exclusive: true }, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    unsubscribe();
    for (const t of timers) clearInterval(t);
    throw err;
  }
  http.on('error', (err) => log('error', `control: listener failed: ${err.message}`));
  const address = http.address();
  port = typeof address === 'object' && address ? address.port : 0;

  async function doClose(): Promise<void> {
    unsubscribe();
    for (const t of timers) clearInterval(t);
    const gone = [...clients].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          c.ws.close(1001, 'server stopping');
        }),
    );
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_DEADLINE_MS).unref());
    await Promise.race([Promise.all(gone), deadline]);
    for (const c of clients) c.ws.terminate();
    clients.clear();
    wss.close();
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  }

  return {
    port,
    token,
    url: `ws://${urlHost}:${port}${CONTROL_PATH}`,
    clientCount: () => clients.size,
    close: () => (closing ??= doClose()),
  };
}
