// The control channel's client, for the CLI verbs and the VS Code extension (pure Node,
// no vscode import). It connects with the token in the Authorization header, waits for
// the snapshot, turns replies into resolved or rejected promises and hands every other
// event to listeners.
import { WebSocket, type RawData } from 'ws';
import { ERROR_CODES, ServeStackError, type ErrorCode } from '../errors';
import {
  CONTROL_PATH,
  CONTROL_SUBPROTOCOL,
  type ControlEvent,
  type ControlReplyError,
  type ControlRequest,
  type ControlResults,
  type Snapshot,
} from '../protocol';

export interface ControlClientOptions {
  port: number;
  token: string;
  /** 127.0.0.1 by default. */
  host?: string;
  /** How long to wait for the connection and its snapshot (default 5 s). */
  connectTimeoutMs?: number;
  /** Default time a request waits for its reply (default 120 s: a reload waits for new workers to boot); 0 = no limit. */
  requestTimeoutMs?: number;
}

export type NonReplyEvent = Exclude<ControlEvent, { type: 'reply' }>;

export interface ControlClient {
  /** The snapshot the server sent on connect. */
  readonly snapshot: Snapshot;
  /** Send a command; resolves with the reply's result, rejects with a ServeStackError carrying the reply's code. */
  request<R extends ControlRequest>(command: R, opts?: { timeoutMs?: number }): Promise<ControlResults[R['type']]>;
  /**
   * Every event but replies. Events that arrived together with the snapshot are delivered
   * to listeners added right after connectControl resolves (before any I/O); an event
   * that arrives while no listener is registered is not kept.
   */
  onEvent(listener: (event: NonReplyEvent) => void): () => void;
  /** The next event that matches, or a CONTROL_TIMEOUT rejection. */
  waitForEvent<E extends NonReplyEvent>(match: (event: NonReplyEvent) => event is E, timeoutMs?: number): Promise<E>;
  waitForEvent(match: (event: NonReplyEvent) => boolean, timeoutMs?: number): Promise<NonReplyEvent>;
  /** Resolves when the connection has closed, for whatever reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

const EARLY_EVENTS_KEPT = 1000;

function controlError(code: ErrorCode, message: string, cause?: unknown, hint?: string): ServeStackError {
  return new ServeStackError(code, message, { cause, hint });
}

function errorFromReply(error: ControlReplyError): ServeStackError {
  const known = Object.prototype.hasOwnProperty.call(ERROR_CODES, error.code);
  return known
    ? controlError(error.code as ErrorCode, error.message, undefined, error.hint)
    : controlError('CONTROL_COMMAND_FAILED', `${error.message} [${error.code}]`, undefined, error.hint);
}

function readBody(res: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (text.length < 1000) text += c;
    });
    res.on('end', () => resolve(text.trim()));
    res.on('error', () => resolve(text.trim()));
  });
}

export function connectControl(opts: ControlClientOptions): Promise<ControlClient> {
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const where = `${urlHost}:${opts.port}`;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const defaultTimeoutMs = opts.requestTimeoutMs ?? 120_000;

  const ws = new WebSocket(`ws://${where}${CONTROL_PATH}`, [CONTROL_SUBPROTOCOL], {
    headers: { Authorization: `Bearer ${opts.token}` },
    perMessageDeflate: false,
    handshakeTimeout: connectTimeoutMs,
  });

  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>();
  const listeners = new Set<(e: NonReplyEvent) => void>();
  let early: NonReplyEvent[] | undefined = [];
  let nextId = 1;
  let snapshot: Snapshot | undefined;
  let closeInfo: { code: number; reason: string } | undefined;
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));

  return new Promise<ControlClient>((resolve, reject) => {
    let settled = false;
    const fail = (err: ServeStackError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
      ws.terminate();
    };
    const timer = setTimeout(
      () => fail(controlError('CONTROL_TIMEOUT', `the control channel at ${where} did not answer within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );

    ws.on('unexpected-response', (_req, res) => {
      void readBody(res).then((body) => {
        const status = res.statusCode ?? 0;
        const reason = body || res.statusMessage || 'no reason given';
        fail(
          status === 401 || status === 403
            ? controlError('CONTROL_UNAUTHORIZED', `the control channel at ${where} refused the connection (${status}): ${reason}`, undefined, 'the token in the state file may belong to another server; restart the server')
            : controlError('CONTROL_CONNECTION_FAILED', `the control channel at ${where} answered ${status}: ${reason}`),
        );
      });
    });

    ws.on('error', (err: NodeJS.ErrnoException) => {
      const message =
        err.code === 'ECONNREFUSED'
          ? `nothing listens on the control port ${where}`
          : `the control channel at ${where} failed: ${err.message}`;
      fail(controlError('CONTROL_CONNECTION_FAILED', message, err));
    });

    ws.on('close', (code: number, reason: Buffer) => {
      closeInfo = { code, reason: reason.toString() };
      for (const [, p] of pending) {
        if (p.timer) clearTimeout(p.timer);
        p.reject(controlError('CONTROL_CONNECTION_FAILED', `the control channel closed before the reply (${code}${closeInfo.reason ? `: ${closeInfo.reason}` : ''})`));
      }
      pending.clear();
      fail(controlError('CONTROL_CONNECTION_FAILED', `the control channel at ${where} closed before its snapshot (${code})`));
      resolveClosed(closeInfo);
    });

    ws.on('message', (data: RawData) => {
      let event: ControlEvent;
      try {
        event = JSON.parse(data.toString()) as ControlEvent;
      } catch {
        // Not ours to interpret (a newer server would still send JSON); skipped.
        return;
      }
      if (event.type === 'reply') {
        const p = pending.get(event.id);
        if (!p) return;
        pending.delete(event.id);
        if (p.timer) clearTimeout(p.timer);
        if (event.ok) p.resolve(event.result);
        else p.reject(errorFromReply(event.error));
        return;
      }
      if (event.type === 'snapshot' && !settled) {
        snapshot = event.snapshot;
        settled = true;
        clearTimeout(timer);
        resolve(client);
        // Events that came with the snapshot wait for listeners added right after connecting
        // (in the same turn); later, events without a listener are not kept.
        setImmediate(() => {
          if (listeners.size === 0) early = undefined;
        });
        return;
      }
      if (early) {
        early.push(event);
        if (early.length > EARLY_EVENTS_KEPT) early.shift();
        return;
      }
      for (const l of listeners) l(event);
    });

    const client: ControlClient = {
      get snapshot(): Snapshot {
        return snapshot as Snapshot;
      },
      closed,
      request(command, reqOpts) {
        if (ws.readyState !== WebSocket.OPEN) {
          return Promise.reject(controlError('CONTROL_CONNECTION_FAILED', 'the control channel is closed'));
        }
        const id = nextId++;
        const timeoutMs = reqOpts?.timeoutMs ?? defaultTimeoutMs;
        return new Promise((resolveReq, rejectReq) => {
          const entry: { resolve: (v: unknown) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } = {
            resolve: resolveReq as (v: unknown) => void,
            reject: rejectReq,
          };
          if (timeoutMs > 0) {
            entry.timer = setTimeout(() => {
              pending.delete(id);
              rejectReq(controlError('CONTROL_TIMEOUT', `no reply to "${command.type}" within ${timeoutMs} ms`));
            }, timeoutMs);
          }
          pending.set(id, entry);
          ws.send(JSON.stringify({ ...command, id }), (err) => {
            if (!err) return;
            pending.delete(id);
            if (entry.timer) clearTimeout(entry.timer);
            rejectReq(controlError('CONTROL_CONNECTION_FAILED', `could not send "${command.type}": ${err.message}`, err));
          });
        });
      },
      onEvent(listener) {
        listeners.add(listener);
        if (early) {
          const queued = early;
          early = undefined;
          queueMicrotask(() => {
            for (const e of queued) for (const l of listeners) l(e);
          });
        }
        return () => listeners.delete(listener);
      },
      waitForEvent(match: (event: NonReplyEvent) => boolean, timeoutMs = 15_000): Promise<NonReplyEvent> {
        return new Promise((resolveEvent, rejectEvent) => {
          const timer = setTimeout(() => {
            off();
            rejectEvent(controlError('CONTROL_TIMEOUT', `no matching event within ${timeoutMs} ms`));
          }, timeoutMs);
          const off = client.onEvent((event) => {
            if (!match(event)) return;
            clearTimeout(timer);
            off();
            resolveEvent(event);
          });
        });
      },
      close() {
        if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
        ws.close(1000, 'client done');
        const force = setTimeout(() => ws.terminate(), 1000);
        force.unref();
        return closed.then(() => clearTimeout(force));
      },
    };
  });
}
