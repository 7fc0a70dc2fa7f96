// Runs one ServeStack server per workspace folder: forks the server bundle (as language
// clients fork their servers), waits for its `ready` message, connects to its control
// channel, mirrors its state (pools, workers, routes, metrics), stops it politely and
// then by force, and keeps a crash budget so a server that keeps dying is not restarted
// in a loop. The only module that starts or stops server processes.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ConfigApplyResult, ControlRequest, ControlResults, LogLine, MetricsSample, PoolInfo, RouteInfo, Snapshot, WorkerInfo } from '../server/protocol';
import { ControlClient } from './controlClient';
import type { ServerLog } from './logChannel';
import { resolveInterpreter, type Interpreter } from './python';

// ── The IPC messages of the fork contract (server/main.ts sends them) ────────────────
/** Server → extension, once the proxy and the control channel listen. */
interface ReadyMessage { type: 'ready'; url: string; control: { port: number; token: string } }
/** Server → extension, when it cannot start; it then exits non-zero. */
interface FatalMessage { type: 'fatal'; message: string; code: string }
type ServerMessage = ReadyMessage | FatalMessage;

/** How long the server may take from fork to `ready`. */
const READY_TIMEOUT_MS = 30_000;
/** How long workers may take to boot before the progress notification gives up waiting. */
const WORKERS_TIMEOUT_MS = 60_000;
/** After asking the server to stop, how long before it is killed (as language clients do). */
const STOP_GRACE_MS = 2_000;
/** The crash budget: this many unexpected exits within the window stop the restarts. */
export const CRASH_BUDGET = { crashes: 5, windowMs: 3 * 60_000 } as const;
/** Lines of the server's own stdout/stderr kept to explain a crash. */
const TAIL_LINES = 40;

export type SessionState = 'starting' | 'running' | 'stopping' | 'stopped';

export class ServeError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'ServeError';
  }
}

export interface UnexpectedExit { code: number | null; signal: NodeJS.Signals | null; tail: string[] }

/** One server process for one workspace folder. */
export class ServerSession implements vscode.Disposable {
  state: SessionState = 'stopped';
  url?: string;
  configFile?: string;
  serverPid?: number;
  startedAt?: number;
  interpreter?: Interpreter;
  readonly pools = new Map<string, PoolInfo>();
  readonly workers = new Map<number, WorkerInfo>();
  routes: RouteInfo[] = [];
  metrics?: MetricsSample;
  /** The last fatal message from the server, if it sent one. */
  fatal?: FatalMessage;

  private child?: ChildProcess;
  private control?: ControlClient;
  private controlSubscriptions: vscode.Disposable[] = [];
  private stopping?: Promise<void>;
  private exited: Promise<void> = Promise.resolve();
  private readonly tail: string[] = [];
  private readonly reportedFailures = new Set<string>();

  private readonly changeEmitter = new vscode.EventEmitter<void>();
  private readonly exitEmitter = new vscode.EventEmitter<UnexpectedExit>();
  private readonly poolFailureEmitter = new vscode.EventEmitter<PoolInfo>();
  private readonly configEmitter = new vscode.EventEmitter<ConfigApplyResult>();
  /** State, pools, workers, routes or metrics changed. */
  readonly onDidChange = this.changeEmitter.event;
  /** The server exited without being asked to (a crash). */
  readonly onDidExitUnexpectedly = this.exitEmitter.event;
  /** A pool's app cannot load (once per distinct failure). */
  readonly onPoolFailure = this.poolFailureEmitter.event;
  /** The server applied (or refused) an edit of servestack.json. */
  readonly onConfig = this.configEmitter.event;

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    private readonly serverJs: string,
    private readonly log: ServerLog,
    /** Prefix for this folder's log lines ("[api] " in a multi-root workspace, else ""). */
    private readonly logPrefix: () => string,
  ) {}

  get dir(): string { return this.folder.uri.fsPath; }
  get isActive(): boolean { return this.state === 'starting' || this.state === 'running'; }

  /** Resolves once the server listens and the control channel is connected; rejects with a ServeError. */
  async start(): Promise<void> {
    if (this.child) throw new ServeError('LISTEN_FAILED', `A server for ${this.folder.name} is already running.`);
    this.setState('starting');
    this.fatal = undefined;
    this.tail.length = 0;
    this.reportedFailures.clear();
    try {
      this.interpreter = await resolveInterpreter(this.folder, this.log.channel);
      this.log.info(`${this.logPrefix()}Serving ${this.dir} — Python: ${this.interpreter.describe}`);
      const ready = await this.spawn();
      this.url = ready.url;
      this.startedAt = Date.now();
      await this.connect(ready);
      this.setState('running');
      this.log.info(`${this.logPrefix()}Listening on ${ready.url}`);
    } catch (error) {
      await this.stop();
      throw error instanceof ServeError ? error : new ServeError('LISTEN_FAILED', errorMessage(error));
    }
  }

  private spawn(): Promise<ReadyMessage> {
    const args = ['serve', this.dir];
    if (this.interpreter?.path) args.push('--python', this.interpreter.path);
    const defaultWorkers = vscode.workspace.getConfiguration('servestack', this.folder.uri).get<number | null>('defaultWorkers', null);
    if (defaultWorkers && !existsSync(path.join(this.dir, 'servestack.json'))) args.push('--workers', String(defaultWorkers));

    const child = fork(this.serverJs, args, {
      cwd: this.dir,
      execArgv: [],
      silent: true,
      // The extension host may be Electron: make the fork a plain Node process.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', SERVESTACK_CLIENT: 'vscode' },
    });
    this.child = child;
    this.serverPid = child.pid;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    readLines(child.stdout, (line) => this.onOutput(line, 'info'));
    readLines(child.stderr, (line) => this.onOutput(line, 'warn'));

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
      child.once('exit', (code, signal) => {
        settle(() => reject(this.fatal
          ? new ServeError(this.fatal.code, this.fatal.message)
          : new ServeError('LISTEN_FAILED', `The server exited (${signal ?? `code ${code}`}) before it listened.${this.tailText()}`)));
        this.onExit(code, signal);
      });
    });
  }

  private async connect(ready: ReadyMessage): Promise<void> {
    const control = await ControlClient.connect(ready.control.port, ready.control.token);
    this.control = control;
    this.controlSubscriptions = [
      control.onSnapshot((s) => this.applySnapshot(s)),
      control.onWorker((w) => {
        if (w.state === 'exited') this.workers.delete(w.id);
        else this.workers.set(w.id, w);
        this.changed();
      }),
      control.onPool((p) => { this.pools.set(p.name, p); this.checkPoolFailure(p); this.changed(); }),
      control.onRoutes((r) => { this.routes = r; this.changed(); }),
      control.onMetrics((m) => { this.metrics = m; this.changed(); }),
      control.onLog((line) => this.onLog(line)),
      control.onConfig((result) => this.configEmitter.fire(result)),
      // Stopped from elsewhere (`servestack stop`, the dashboard): an exit that follows is no crash.
      control.onStopping(() => { if (this.state === 'running') this.setState('stopping'); }),
    ];
    // The snapshot first, then the events that followed it.
    this.applySnapshot(control.snapshot);
    control.start();
  }

  /**
   * Fetch a fresh snapshot. The server sends worker events on state changes only, so
   * request counts and memory move on between them: the Workers view asks while visible.
   */
  async refresh(): Promise<void> {
    if (this.state !== 'running' || !this.control) return;
    try {
      this.applySnapshot(await this.control.request({ type: 'status' }));
    } catch (error) {
      this.log.channel.debug(`status refresh failed: ${errorMessage(error)}`);
    }
  }

  private applySnapshot(snapshot: Snapshot): void {
    this.url = snapshot.server.url || this.url;
    this.configFile = snapshot.server.configFile;
    this.pools.clear();
    for (const p of snapshot.pools) { this.pools.set(p.name, p); this.checkPoolFailure(p); }
    this.workers.clear();
    for (const w of snapshot.workers) if (w.state !== 'exited') this.workers.set(w.id, w);
    this.routes = snapshot.routes;
    this.changed();
  }

  private checkPoolFailure(pool: PoolInfo): void {
    if (!pool.failure) return;
    if (this.reportedFailures.has(`${pool.name}\0${pool.failure}`)) return;
    this.reportedFailures.add(`${pool.name}\0${pool.failure}`);
    this.poolFailureEmitter.fire(pool);
  }

  private onLog(line: LogLine): void {
    let prefix = this.logPrefix();
    if (line.source === 'worker') {
      const pid = line.workerId !== undefined ? this.workers.get(line.workerId)?.pid : undefined;
      prefix += `[${line.pool ?? 'worker'}${pid ? ` ${pid}` : ''}] `;
    } else if (line.source === 'config') prefix += '[config] ';
    this.log.server(line, prefix);
  }

  /** The server's own stdout/stderr: shown until the control channel streams the log. */
  private onOutput(text: string, level: 'info' | 'warn'): void {
    this.tail.push(text);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    if (this.control) return; // the control channel's log events carry the same lines
    this.log.server({ time: Date.now(), level, source: 'server', text }, this.logPrefix());
  }

  private tailText(): string {
    const lines = this.tail.filter((l) => l.trim()).slice(-8);
    return lines.length ? `\n${lines.join('\n')}` : '';
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const unexpected = this.state === 'running';
    this.child = undefined;
    this.disconnect();
    this.workers.clear();
    this.pools.clear();
    this.metrics = undefined;
    this.setState('stopped');
    if (unexpected) {
      this.log.error(`${this.logPrefix()}The server stopped unexpectedly (${signal ?? `exit code ${code}`}).`);
      // Lines shown while the control channel carried the log may hold the crash's stack.
      for (const line of this.tail.slice(-12)) this.log.error(`${this.logPrefix()}${line}`);
      this.exitEmitter.fire({ code, signal, tail: [...this.tail] });
    }
  }

  private disconnect(): void {
    for (const d of this.controlSubscriptions.splice(0)) d.dispose();
    this.control?.dispose();
    this.control = undefined;
  }

  /** Ask politely (control `stop`, else SIGTERM), kill after 2 s; resolves when the process is gone. */
  stop(): Promise<void> {
    const child = this.child;
    if (!child) { this.setState('stopped'); return Promise.resolve(); }
    if (this.stopping) return this.stopping;
    this.setState('stopping');
    const exited = this.exited;
    this.stopping = (async () => {
      let asked = false;
      if (this.control) {
        try {
          await withTimeout(this.control.request({ type: 'stop' }), STOP_GRACE_MS / 2);
          asked = true;
        } catch (error) {
          this.log.warn(`${this.logPrefix()}The server did not take the stop command (${errorMessage(error)}); sending SIGTERM.`);
        }
      }
      if (!asked) child.kill('SIGTERM');
      if (!(await withTimeout(exited.then(() => true), STOP_GRACE_MS).catch(() => false))) {
        this.log.warn(`${this.logPrefix()}The server did not stop within ${STOP_GRACE_MS / 1000} s; killing it.`);
        child.kill('SIGKILL');
        await withTimeout(exited, STOP_GRACE_MS).catch(() => undefined);
      }
    })().finally(() => { this.stopping = undefined; });
    return this.stopping;
  }

  /** Resolves when every Python pool has its wanted number of booted workers, or one fails to load. */
  whenWorkersReady(report: (message: string) => void, cancel?: vscode.CancellationToken): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.isActive || cancel?.isCancellationRequested) return done();
        const pools = [...this.pools.values()].filter((p) => p.kind === 'python');
        if (pools.some((p) => p.state === 'backoff')) return done();
        const counts = pools.map((p) => ({ p, up: this.workersOf(p.name).filter((w) => w.state === 'idle' || w.state === 'busy').length }));
        const up = counts.reduce((n, c) => n + Math.min(c.up, c.p.wanted), 0);
        const wanted = counts.reduce((n, c) => n + c.p.wanted, 0);
        report(`${up}/${wanted} workers ready`);
        if (this.state === 'running' && counts.every((c) => c.up >= c.p.wanted)) done();
      };
      const timer = setTimeout(() => done(), WORKERS_TIMEOUT_MS);
      const subscriptions = [this.onDidChange(check), ...(cancel ? [cancel.onCancellationRequested(check)] : [])];
      const done = () => { clearTimeout(timer); for (const s of subscriptions) s.dispose(); resolve(); };
      check();
    });
  }

  workersOf(pool: string): WorkerInfo[] {
    return [...this.workers.values()].filter((w) => w.pool === pool).sort((a, b) => a.id - b.id);
  }

  pythonPools(): PoolInfo[] {
    return [...this.pools.values()].filter((p) => p.kind === 'python');
  }

  async request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]> {
    if (!this.control) throw new ServeError('CONTROL_NO_SERVER', `No server runs for ${this.folder.name}.`);
    return this.control.request(command);
  }

  private setState(state: SessionState): void {
    if (this.state === state) return;
    this.state = state;
    this.changed();
  }

  private changed(): void { this.changeEmitter.fire(); }

  dispose(): void {
    void this.stop();
    this.disconnect();
    this.changeEmitter.dispose();
    this.exitEmitter.dispose();
    this.poolFailureEmitter.dispose();
    this.configEmitter.dispose();
  }
}

/** All the servers of the window, the crash budget, and what the user is told. */
export class Supervisor implements vscode.Disposable {
  private readonly sessions = new Map<string, ServerSession>();
  private readonly sessionSubscriptions = new Map<string, vscode.Disposable[]>();
  private readonly crashes = new Map<string, number[]>();
  /** The restart-only changes already offered per session (a new session starts with none). */
  private readonly restartOffered = new WeakMap<ServerSession, string>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  private readonly startFailureEmitter = new vscode.EventEmitter<{ session: ServerSession; code: string; message: string }>();
  /** Any session started, stopped, or changed its pools, workers, routes or metrics. */
  readonly onDidChange = this.changeEmitter.event;
  /** A server could not start (after the user was told). */
  readonly onStartFailure = this.startFailureEmitter.event;

  constructor(
    private readonly serverJs: string,
    private readonly log: ServerLog,
    private readonly openInBrowser: (session: ServerSession) => Thenable<unknown>,
  ) {}

  /** Sessions that are starting or running, in workspace folder order. */
  activeSessions(): ServerSession[] {
    return [...this.sessions.values()].filter((s) => s.isActive).sort((a, b) => a.folder.index - b.folder.index);
  }

  sessionFor(folder: vscode.WorkspaceFolder | vscode.Uri): ServerSession | undefined {
    const uri = folder instanceof vscode.Uri ? folder : folder.uri;
    return this.sessions.get(uri.toString());
  }

  /**
   * Serve a folder (the one given, the only one, or the one the user picks); resolves when
   * its workers are up (or failed), with the session, or undefined when nothing was started.
   */
  async serve(folder: vscode.WorkspaceFolder): Promise<ServerSession | undefined> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage(
        'ServeStack does not serve an untrusted workspace: serving runs its Python code. Trust the workspace to serve it; diagnostics on servestack.json work either way.',
        'Manage Workspace Trust',
      ).then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
      return undefined;
    }
    const key = folder.uri.toString();
    const existing = this.sessions.get(key);
    if (existing?.isActive) {
      void vscode.window.showInformationMessage(`ServeStack already serves ${folder.name}${existing.url ? ` at ${existing.url}` : ''}.`, 'Open in Browser')
        .then((choice) => choice && this.openInBrowser(existing));
      return existing;
    }
    if (existing) {
      await existing.stop(); // one still stopping must let go of its port first
      existing.dispose();
    }
    for (const d of this.sessionSubscriptions.get(key) ?? []) d.dispose();

    const session = new ServerSession(folder, this.serverJs, this.log,
      () => (vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? `[${folder.name}] ` : '');
    this.sessions.set(key, session);
    this.log.roots.add(folder.uri.fsPath);
    this.sessionSubscriptions.set(key, [
      session.onDidChange(() => this.changeEmitter.fire()),
      session.onDidExitUnexpectedly((exit) => this.onCrash(session, exit)),
      session.onPoolFailure((pool) => this.onPoolFailure(session, pool)),
      session.onConfig((result) => this.onConfig(session, result)),
    ]);

    const started = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `ServeStack: serving ${folder.name}`, cancellable: true },
      async (progress, cancel) => {
        const onCancel = cancel.onCancellationRequested(() => void session.stop());
        try {
          progress.report({ message: 'starting the server…' });
          await session.start();
          await session.whenWorkersReady((message) => progress.report({ message }), cancel);
          return session.isActive;
        } catch (error) {
          if (!cancel.isCancellationRequested) this.reportStartFailure(session, error);
          return false;
        } finally {
          onCancel.dispose();
        }
      },
    );
    if (!started) return undefined;
    if (vscode.workspace.getConfiguration('servestack', folder.uri).get<boolean>('openBrowser', true)) {
      void this.openInBrowser(session);
    }
    return session;
  }

  async stop(session: ServerSession): Promise<void> {
    await session.stop();
    this.log.info(`${(vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? `[${session.folder.name}] ` : ''}Stopped.`);
  }

  /** Stop the folder's server, then serve it again (with the config as it is on disk now). */
  async restart(session: ServerSession): Promise<ServerSession | undefined> {
    await this.stop(session);
    return this.serve(session.folder);
  }

  /** Stop every server; deactivate returns this promise. */
  stopAll(): Promise<void> {
    return Promise.all([...this.sessions.values()].map((s) => s.stop())).then(() => undefined);
  }

  private reportStartFailure(session: ServerSession, error: unknown): void {
    const code = error instanceof ServeError ? error.code : 'LISTEN_FAILED';
    const message = errorMessage(error);
    this.log.error(`${session.folder.name}: ${message} [${code}]`);
    this.startFailureEmitter.fire({ session, code, message });
    const actions = ['Show Logs', ...(code.startsWith('CONFIG_') ? ['Open servestack.json'] : [])];
    void vscode.window.showErrorMessage(`ServeStack could not serve ${session.folder.name}: ${firstLine(message)}`, ...actions)
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Open servestack.json') {
          void vscode.window.showTextDocument(vscode.Uri.joinPath(session.folder.uri, 'servestack.json'));
        }
      });
  }

  private onCrash(session: ServerSession, exit: UnexpectedExit): void {
    const key = session.folder.uri.toString();
    const { recent, exhausted } = recordCrash(this.crashes.get(key) ?? [], Date.now());
    this.crashes.set(key, recent);
    const how = exit.signal ?? `exit code ${exit.code}`;
    if (exhausted) {
      void vscode.window.showErrorMessage(
        `The ServeStack server for ${session.folder.name} crashed ${recent.length} times in the last ${CRASH_BUDGET.windowMs / 60_000} minutes (last: ${how}). It will not be restarted; see the logs, fix the cause, then serve again.`,
        'Show Logs',
      ).then((choice) => choice && this.log.show());
      return;
    }
    void vscode.window.showErrorMessage(`The ServeStack server for ${session.folder.name} stopped unexpectedly (${how}).`, 'Restart', 'Show Logs')
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Restart') void this.serve(session.folder);
      });
  }

  /**
   * A field only a restart applies (listen, tls): offer the restart, once per distinct
   * request (each later save reports it again until the server restarts). A change the
   * server refused while provisioning it is shown too: the editor's own diagnostics
   * cannot see it (an interpreter missing from PATH, a folder removed since).
   */
  private onConfig(session: ServerSession, result: ConfigApplyResult): void {
    const configFile = vscode.Uri.joinPath(session.folder.uri, 'servestack.json');
    if (!result.applied) {
      const refused = result.diagnostics.find((d) => d.severity === 'error' && d.data?.provision === true);
      if (!refused) return; // the Problems panel shows the checks' own diagnostics
      void vscode.window.showErrorMessage(`ServeStack did not apply the change to servestack.json (line ${refused.line}): ${firstLine(refused.message)}. The running config keeps serving.`, 'Open servestack.json', 'Show Logs')
        .then((choice) => {
          if (choice === 'Show Logs') this.log.show();
          if (choice === 'Open servestack.json') {
            const line = Math.max(0, refused.line - 1);
            void vscode.window.showTextDocument(configFile, { selection: new vscode.Range(line, 0, line, 0) });
          }
        });
      return;
    }
    const pending = result.restartNeeded ?? [];
    const key = pending.map((r) => `${r.field}=${r.wanted}`).join('\0');
    if (key === (this.restartOffered.get(session) ?? '')) return;
    this.restartOffered.set(session, key);
    if (pending.length === 0) return;
    const fields = pending.map((r) => `"${r.field}" (line ${r.line}: ${r.wanted})`).join(', ');
    void vscode.window.showWarningMessage(`ServeStack: ${fields} changed in servestack.json of ${session.folder.name}; restart the server to apply it. It keeps serving at ${session.url ?? 'its address'} until then.`, 'Restart Server', 'Show Logs')
      .then(async (choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Restart Server') await this.restart(session);
      });
  }

  private onPoolFailure(session: ServerSession, pool: PoolInfo): void {
    const failure = pool.failure ?? 'the app could not load';
    this.log.error(`${session.folder.name}: pool ${pool.name}: ${failure}`);
    const location = sourceLocation(failure, session.dir);
    const actions = ['Show Logs', ...(location ? [`Open ${path.basename(location.file)}:${location.line}`] : [])];
    void vscode.window.showErrorMessage(`ServeStack: the app of pool '${pool.name}' cannot load: ${firstLine(failure)}`, ...actions)
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        else if (choice && location) {
          const line = Math.max(0, location.line - 1);
          void vscode.window.showTextDocument(vscode.Uri.file(location.file), { selection: new vscode.Range(line, 0, line, 0) });
        }
      });
  }

  dispose(): void {
    void this.stopAll();
    for (const subs of this.sessionSubscriptions.values()) for (const d of subs) d.dispose();
    for (const s of this.sessions.values()) s.dispose();
    this.changeEmitter.dispose();
    this.startFailureEmitter.dispose();
  }
}

/** Adds a crash at `now` to a folder's history: the crashes within the window, and whether they use up the budget. */
export function recordCrash(history: readonly number[], now: number): { recent: number[]; exhausted: boolean } {
  const recent = [...history.filter((t) => now - t < CRASH_BUDGET.windowMs), now];
  return { recent, exhausted: recent.length >= CRASH_BUDGET.crashes };
}

/** `app.py:12` or `File "app.py", line 12` in a failure message. */
export function sourceLocation(text: string, dir: string): { file: string; line: number } | undefined {
  const m = /File "([^"]+\.py)", line (\d+)/.exec(text) ?? /([^\s:"'()]+\.py):(\d+)/.exec(text);
  if (!m) return undefined;
  return { file: path.isAbsolute(m[1]) ? m[1] : path.join(dir, m[1]), line: Number(m[2]) };
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

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0];
}
