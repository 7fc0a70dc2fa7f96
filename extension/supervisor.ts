// The servers of the window, one session per served folder. A session ties three parts
// together: the process (serverProcess.ts: fork, ready, stop), the control connection
// (controlClient.ts), and the one store of what the server said (sessionStore.ts), which
// every view, the status bar and the dashboard webview read. What the user is told lives
// in notifications.ts. This module is the only one that starts or stops servers.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ControlRequest, ControlResults, LogLine, PoolInfo, WorkerInfo } from '../server/protocol';
import { ControlClient } from './controlClient';
import type { ServerLog } from './logChannel';
import { Notifications } from './notifications';
import { resolveInterpreter, type Interpreter } from './python';
import { errorMessage, ServeError, ServerProcess, type ProcessExit, type ReadyMessage } from './serverProcess';
import { SessionStore, type SessionState, type Subscription } from './sessionStore';
import { remoteServeArgs, type Served } from './remote';

export { errorMessage, ServeError } from './serverProcess';
export type { SessionState } from './sessionStore';

/** How long workers may take to boot before the progress notification gives up waiting. */
const WORKERS_TIMEOUT_MS = 60_000;

export interface UnexpectedExit extends ProcessExit { tail: string[] }

/** One server process for one workspace folder. */
export class ServerSession implements vscode.Disposable {
  /** What the server said, and where the process is: the one place views read. */
  readonly store = new SessionStore();
  interpreter?: Interpreter;

  private process?: ServerProcess;
  private control?: ControlClient;
  private controlSubscriptions: vscode.Disposable[] = [];
  private stopping?: Promise<void>;
  /** What the server said it serves at (the ready message), and how the window reaches it. */
  private ready?: ReadyMessage;
  private absproxy = false;
  /** "Serve on my network" for this run only (never saved). */
  lan = false;

  private readonly exitEmitter = new vscode.EventEmitter<UnexpectedExit>();
  /** State, pools, workers, routes or metrics changed. */
  readonly onDidChange: (listener: () => void) => Subscription = this.store.onDidChange;
  /** The server exited without being asked to (a crash). */
  readonly onDidExitUnexpectedly = this.exitEmitter.event;
  /** A pool's app cannot load (once per distinct failure). */
  readonly onPoolFailure: (listener: (pool: PoolInfo) => void) => Subscription = this.store.onPoolFailure;

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    private readonly serverJs: string,
    private readonly log: ServerLog,
    /** Prefix for this folder's log lines ("[api] " in a multi-root workspace, else ""). */
    private readonly logPrefix: () => string,
  ) {}

  get dir(): string { return this.folder.uri.fsPath; }
  get state(): SessionState { return this.store.state; }
  get isActive(): boolean { return this.store.isActive; }
  get url(): string | undefined { return this.store.url; }
  /** What Open in Browser opens (remote.ts turns it into the URL the browser reaches). */
  get served(): Served | undefined {
    return this.store.url ? { url: this.store.url, namedUrl: this.ready?.namedUrl, absproxy: this.absproxy } : undefined;
  }
  /** The network URL while served with "Serve on my network". */
  get lanUrl(): string | undefined { return this.isActive ? this.ready?.lanUrl : undefined; }
  get serverPid(): number | undefined { return this.store.serverPid; }
  get pools(): Map<string, PoolInfo> { return this.store.pools; }
  get workers(): Map<number, WorkerInfo> { return this.store.workers; }

  /** Resolves once the server listens and the control channel is connected; rejects with a ServeError. */
  async start(): Promise<void> {
    if (this.process?.isRunning) throw new ServeError('LISTEN_FAILED', `A server for ${this.folder.name} is already running.`);
    this.store.reset();
    this.store.setState('starting');
    try {
      this.interpreter = await resolveInterpreter(this.folder, this.log.channel);
      this.log.info(`${this.logPrefix()}Serving ${this.dir} — Python: ${this.interpreter.describe}`);
      const ready = await this.spawn();
      this.ready = ready;
      this.store.url = ready.url;
      this.store.startedAt = Date.now();
      await this.connect(ready);
      this.store.setState('running');
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
    const remote = remoteServeArgs();
    this.absproxy = remote.length > 0;
    args.push(...remote);
    if (this.lan) args.push('--lan');
    const child = new ServerProcess({
      serverJs: this.serverJs,
      args,
      cwd: this.dir,
      onOutput: (line, level) => {
        // Once the control channel carries the log, its events hold the same lines.
        if (!this.control) this.log.server({ time: Date.now(), level, source: 'server', text: line }, this.logPrefix());
      },
      onExit: (exit) => this.onExit(child, exit),
      onWarning: (text) => this.log.warn(`${this.logPrefix()}${text}`),
    });
    this.process = child;
    this.store.serverPid = child.pid;
    return child.ready();
  }

  private async connect(ready: ReadyMessage): Promise<void> {
    const control = await ControlClient.connect(ready.control.port, ready.control.token);
    this.control = control;
    this.controlSubscriptions = [
      control.onEvent((event) => this.store.applyEvent(event)),
      control.onLog((line) => this.onLog(line)),
      // Stopped from elsewhere (`servestack stop`, the dashboard): an exit that follows is no crash.
      control.onStopping(() => { if (this.store.state === 'running') this.store.setState('stopping'); }),
    ];
    // The snapshot first, then the events that followed it.
    this.store.applySnapshot(control.snapshot);
    control.start();
  }

  private onLog(line: LogLine): void {
    let prefix = this.logPrefix();
    if (line.source === 'worker') {
      const pid = line.workerId !== undefined ? this.store.workers.get(line.workerId)?.pid : undefined;
      prefix += `[${line.pool ?? 'worker'}${pid ? ` ${pid}` : ''}] `;
    } else if (line.source === 'config') prefix += '[config] ';
    else if (line.source === 'browser') prefix += '[browser] ';
    this.log.server(line, prefix);
  }

  private onExit(child: ServerProcess, exit: ProcessExit): void {
    if (this.process !== child) return;
    const unexpected = this.store.state === 'running';
    this.process = undefined;
    this.disconnect();
    this.store.clearServerState();
    this.store.setState('stopped');
    if (unexpected) {
      const tail = child.tailLines();
      this.log.error(`${this.logPrefix()}The server stopped unexpectedly (${exit.signal ?? `exit code ${exit.code}`}).`);
      // Lines shown while the control channel carried the log may hold the crash's stack.
      for (const line of tail.slice(-12)) this.log.error(`${this.logPrefix()}${line}`);
      this.exitEmitter.fire({ ...exit, tail });
    }
  }

  private disconnect(): void {
    for (const d of this.controlSubscriptions.splice(0)) d.dispose();
    this.control?.dispose();
    this.control = undefined;
  }

  /** Ask politely, kill after the shutdown deadline; resolves when the process is gone. */
  stop(): Promise<void> {
    const child = this.process;
    if (!child) { this.store.setState('stopped'); return Promise.resolve(); }
    if (this.stopping) return this.stopping;
    this.store.setState('stopping');
    const control = this.control;
    this.stopping = child.stop(control ? () => control.request({ type: 'stop' }) : undefined)
      .finally(() => { this.stopping = undefined; });
    return this.stopping;
  }

  /** Resolves when every Python pool has its wanted number of booted workers, or one fails to load. */
  whenWorkersReady(report: (message: string) => void, cancel?: vscode.CancellationToken): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.isActive || cancel?.isCancellationRequested) return done();
        const { up, wanted, settled } = this.store.readiness();
        report(`${up}/${wanted} workers ready`);
        if (settled) done();
      };
      const timer = setTimeout(() => done(), WORKERS_TIMEOUT_MS);
      const subscriptions = [this.onDidChange(check), ...(cancel ? [cancel.onCancellationRequested(check)] : [])];
      const done = () => { clearTimeout(timer); for (const s of subscriptions) s.dispose(); resolve(); };
      check();
    });
  }

  workersOf(pool: string): WorkerInfo[] {
    return this.store.workersOf(pool);
  }

  pythonPools(): PoolInfo[] {
    return this.store.pythonPools();
  }

  async request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]> {
    if (!this.control) throw new ServeError('CONTROL_NO_SERVER', `No server runs for ${this.folder.name}.`);
    return this.control.request(command);
  }

  dispose(): void {
    void this.stop();
    this.disconnect();
    this.exitEmitter.dispose();
    this.store.dispose();
  }
}

/** All the servers of the window. */
export class Supervisor implements vscode.Disposable {
  private readonly sessions = new Map<string, ServerSession>();
  private readonly sessionSubscriptions = new Map<string, { dispose(): void }[]>();
  private readonly notifications: Notifications;
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
  ) {
    this.notifications = new Notifications(log);
  }

  /** Sessions that are starting or running, in workspace folder order. */
  activeSessions(): ServerSession[] {
    return [...this.sessions.values()].filter((s) => s.isActive).sort((a, b) => a.folder.index - b.folder.index);
  }

  sessionFor(folder: vscode.WorkspaceFolder | vscode.Uri): ServerSession | undefined {
    const uri = folder instanceof vscode.Uri ? folder : folder.uri;
    return this.sessions.get(uri.toString());
  }

  /**
   * Serve a folder; resolves when its workers are up (or failed), with the session, or
   * undefined when nothing was started.
   */
  async serve(folder: vscode.WorkspaceFolder, options: { lan?: boolean } = {}): Promise<ServerSession | undefined> {
    if (!vscode.workspace.isTrusted) {
      this.notifications.untrusted();
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
    session.lan = options.lan === true;
    this.sessions.set(key, session);
    this.log.roots.add(folder.uri.fsPath);
    this.sessionSubscriptions.set(key, [
      session.onDidChange(() => this.changeEmitter.fire()),
      session.onDidExitUnexpectedly((exit) => this.notifications.crashed(folder, exit, () => void this.serve(session.folder))),
      session.onPoolFailure((pool) => this.notifications.poolFailed(folder, pool)),
      session.store.onEvent((event) => {
        if (event.type === 'config') this.notifications.configApplied(folder, session, event, () => this.restart(session));
      }),
    ]);
    this.changeEmitter.fire();

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
          if (!cancel.isCancellationRequested) {
            const { code, message } = this.notifications.startFailed(folder, error);
            this.startFailureEmitter.fire({ session, code, message });
          }
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

  dispose(): void {
    void this.stopAll();
    for (const subs of this.sessionSubscriptions.values()) for (const d of subs) d.dispose();
    for (const s of this.sessions.values()) s.dispose();
    this.changeEmitter.dispose();
    this.startFailureEmitter.dispose();
  }
}
