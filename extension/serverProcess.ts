// The server process of one served folder: fork the server bundle (as language clients
// fork their servers), wait for its `ready` IPC message, keep the tail of its own output
// to explain a crash, and stop it: ask politely, then kill only after the one shutdown
// deadline (SHUTDOWN.killAfterMs in server/protocol.ts), so the drain the server promises
// requests in flight is never cut short. No vscode import.
import { fork, type ChildProcess } from 'node:child_process';
import { SHUTDOWN } from '../server/protocol';
import { SERVER_NODE_FLAGS, serverLaunchEnv } from '../server/launch';

// ── The IPC messages of the fork contract (server/cli.ts sends them) ─────────────────
/** Server → extension, once the proxy and the control channel listen. */
export interface ReadyMessage { type: 'ready'; url: string; control: { port: number; token: string }; namedUrl?: string; lanUrl?: string }
/** Server → extension, when it cannot start; it then exits non-zero. */
export interface FatalMessage { type: 'fatal'; message: string; code: string }
type ServerMessage = ReadyMessage | FatalMessage;

/** How long the server may take from fork to `ready`. */
const READY_TIMEOUT_MS = 30_000;
/** How long the control channel's `stop` may take to be answered (it is answered before the drain begins). */
const STOP_ASK_TIMEOUT_MS = 1_000;
/** Lines of the server's own stdout/stderr kept to explain a crash. */
const TAIL_LINES = 40;

export class ServeError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'ServeError';
  }
}

export interface ProcessExit { code: number | null; signal: NodeJS.Signals | null }

export interface ServerProcessOptions {
  serverJs: string;
  args: string[];
  cwd: string;
  /** A line of the server's own stdout ('info') or stderr ('warn'). */
  onOutput: (line: string, level: 'info' | 'warn') => void;
  /** The process exited, whatever the reason (after start resolved or rejected). */
  onExit: (exit: ProcessExit) => void;
  onWarning: (text: string) => void;
}

export class ServerProcess {
  readonly pid: number | undefined;
  fatal?: FatalMessage;
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private readonly exited: Promise<ProcessExit>;
  private hasExited = false;
  private stopping?: Promise<void>;

  constructor(private readonly options: ServerProcessOptions) {
    this.child = fork(options.serverJs, options.args, {
      cwd: options.cwd,
      execArgv: [...SERVER_NODE_FLAGS],
      silent: true,
      // The extension host may be Electron: make the fork a plain Node process.
      env: serverLaunchEnv({ ...process.env, ELECTRON_RUN_AS_NODE: '1', SERVESTACK_CLIENT: 'vscode' }),
    });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.hasExited = true;
      resolve({ code, signal });
    }));
    readLines(this.child.stdout, (line) => this.output(line, 'info'));
    readLines(this.child.stderr, (line) => this.output(line, 'warn'));
    void this.exited.then((exit) => options.onExit(exit));
  }

  get isRunning(): boolean { return !this.hasExited; }

  /** The last lines of its own output (a crash's stack is often there). */
  tailLines(): string[] { return [...this.tail]; }

  tailText(): string {
    const lines = this.tail.filter((l) => l.trim()).slice(-8);
    return lines.length ? `\n${lines.join('\n')}` : '';
  }

  private output(line: string, level: 'info' | 'warn'): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.options.onOutput(line, level);
  }

  /** Resolves with the ready message; rejects with a ServeError (fatal message, early exit, timeout). */
  ready(): Promise<ReadyMessage> {
    const child = this.child;
    return new Promise<ReadyMessage>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => { if (!settled) { settled = true; clearTimeout(timer); fn(); } };
      const timer = setTimeout(() => settle(() => reject(new ServeError('LISTEN_FAILED',
        `The server did not start within ${READY_TIMEOUT_MS / 1000} s.`))), READY_TIMEOUT_MS);
      child.on('message', (raw) => {
        const message = raw as ServerMessage;
        if (message?.type === 'ready') settle(() => resolve(message));
        else if (message?.type === 'fatal') {
          this.fatal = message;
          settle(() => reject(new ServeError(message.code, message.message)));
        }
      });
      child.once('error', (error) => settle(() => reject(new ServeError('LISTEN_FAILED', `Could not start the server: ${error.message}`))));
      void this.exited.then(({ code, signal }) => settle(() => reject(this.fatal
        ? new ServeError(this.fatal.code, this.fatal.message)
        : new ServeError('LISTEN_FAILED', `The server exited (${signal ?? `code ${code}`}) before it listened.${this.tailText()}`))));
    });
  }

  /**
   * Ask politely (`ask`: the control channel's stop; else SIGTERM), kill after
   * SHUTDOWN.killAfterMs; resolves when the process is gone.
   */
  stop(ask?: () => Promise<unknown>): Promise<void> {
    if (this.hasExited) return Promise.resolve();
    this.stopping ??= (async () => {
      let asked = false;
      if (ask) {
        try {
          await withTimeout(ask(), STOP_ASK_TIMEOUT_MS);
          asked = true;
        } catch (error) {
          this.options.onWarning(`The server did not take the stop command (${errorMessage(error)}); sending SIGTERM.`);
        }
      }
      if (!asked) this.child.kill('SIGTERM');
      if (!(await withTimeout(this.exited.then(() => true), SHUTDOWN.killAfterMs).catch(() => false))) {
        this.options.onWarning(`The server did not stop within ${SHUTDOWN.killAfterMs / 1000} s; killing it.`);
        this.child.kill('SIGKILL');
        await withTimeout(this.exited, 5_000).catch(() => undefined);
      }
    })();
    return this.stopping;
  }
}

function readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      onLine(buffer.slice(0, nl).replace(/\r$/, ''));
      buffer = buffer.slice(nl + 1);
    }
  });
  stream.on('end', () => { if (buffer) onLine(buffer); buffer = ''; });
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
