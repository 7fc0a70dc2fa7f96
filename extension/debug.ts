// Debug Workers: the command, the Workers view actions, and the `servestack` debug type
// (a launch.json snippet, and dynamic "ServeStack: debug pool NAME" entries so F5 works
// with no file). The server restarts the chosen workers under debugpy; this attaches a
// `debugpy` session to each, and when the user stops that session the pool rolls back to
// normal workers. Also Dump Stack, and opening a "stuck in app.py:N" location.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatStackReport } from '../server/control/cliVerbs';
import type { StackLocation, WorkerInfo } from '../server/protocol';
import type { ServerLog } from './logChannel';
import { errorMessage, type ServerSession, type Supervisor } from './supervisor';
import type { WorkersNode } from './workersTree';

export const DEBUGPY_EXTENSION_ID = 'ms-python.debugpy';
export const DEBUG_TYPE = 'servestack';
const STACK_SCHEME = 'servestack-stack';

/** A `servestack` debug configuration, as launch.json (or the dynamic list) holds it. */
export interface ServeStackDebugConfiguration extends vscode.DebugConfiguration {
  pool?: string;
  worker?: number;
  all?: boolean;
  /** Every request of the pool goes to the debugged worker. */
  pin?: boolean;
  /** Every request of this route path goes to the debugged worker. */
  pinRoute?: string;
  justMyCode?: boolean;
}

/** Marks the attach sessions this starts, so their end can be told from others'. */
interface AttachMarker {
  folder: string;
  pool: string;
  worker: number;
  port: number;
}

export interface DebugOutcome {
  workers: { id: number; pool: string; port: number }[];
  /** False when the Python Debugger extension is missing (nothing could attach). */
  attached: boolean;
}

export class WorkerDebugging implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** Ports with an attach session of ours, so a worker is attached once. */
  private readonly attachedPorts = new Set<number>();
  /** folder\0pool pools the user debugs: a debugged worker that replaces another (a reload) is attached too. */
  private readonly debugging = new Set<string>();
  /** The last message about the missing Python Debugger (the extension tests read it). */
  lastMissingExtensionMessage: string | undefined;
  /** Stack dumps, shown as read-only documents: an untitled one would be offered for saving (and F5 saves the active untitled editor first). */
  private readonly stacks = new Map<string, string>();
  private stackCount = 0;

  constructor(private readonly supervisor: Supervisor, private readonly log: ServerLog) {
    this.disposables.push(
      vscode.debug.onDidTerminateDebugSession((s) => void this.onSessionEnded(s)),
      supervisor.onDidChange(() => this.attachNewWorkers()),
    );
  }

  register(context: vscode.ExtensionContext, currentSession: () => ServerSession | undefined): void {
    const provider = new ServeStackDebugProvider(this, this.supervisor);
    context.subscriptions.push(
      this,
      vscode.workspace.registerTextDocumentContentProvider(STACK_SCHEME, { provideTextDocumentContent: (uri) => this.stacks.get(uri.path) ?? '' }),
      vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, provider, vscode.DebugConfigurationProviderTriggerKind.Initial),
      // A second object, without resolve: VS Code resolves a configuration through every provider of its type.
      vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, { provideDebugConfigurations: (f) => provider.provideDebugConfigurations(f) }, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
      vscode.commands.registerCommand('servestack.debugWorkers', async (node?: WorkersNode) => {
        const session = node?.session ?? currentSession() ?? this.supervisor.activeSessions()[0];
        if (!session?.isActive) {
          void vscode.window.showInformationMessage('ServeStack: serve the workspace first; then Debug Workers restarts its workers under debugpy.', 'Serve Workspace')
            .then((choice) => choice && vscode.commands.executeCommand('servestack.serve'));
          return undefined;
        }
        const pool = node?.kind === 'pool' || node?.kind === 'worker' ? node.pool.name : await pickPool(session);
        if (!pool) return undefined;
        return this.run(`debug pool ${pool}`, () => this.debugWorkers(session, { pool, ...(node?.kind === 'worker' ? { worker: node.worker.id } : {}), pin: pinSetting() }));
      }),
      vscode.commands.registerCommand('servestack.stopDebugging', async (node?: WorkersNode) => {
        const session = node?.session ?? currentSession() ?? this.supervisor.activeSessions()[0];
        if (!session?.isActive) return;
        const pool = node?.kind === 'pool' || node?.kind === 'worker' ? node.pool.name : undefined;
        await this.run('stop debugging', () => this.stopDebugging(session, pool));
      }),
      vscode.commands.registerCommand('servestack.dumpStack', async (node?: WorkersNode) => {
        if (node?.kind !== 'worker') return undefined;
        return this.run(`dump the stack of worker ${node.worker.pid ?? node.worker.id}`, () => this.dumpStack(node.session, node.worker));
      }),
      vscode.commands.registerCommand('servestack.openStackLocation', (session: ServerSession | string, location: StackLocation) => openLocation(typeof session === 'string' ? session : session.dir, location)),
    );
  }

  /** Restart workers of a pool under debugpy, then attach to each (or say what is missing). */
  async debugWorkers(session: ServerSession, config: Omit<ServeStackDebugConfiguration, 'type' | 'request' | 'name'>): Promise<DebugOutcome> {
    const debugger_ = vscode.extensions.getExtension(DEBUGPY_EXTENSION_ID);
    const debugpyPath = debugpyFolder(debugger_);
    this.log.info(`Debug Workers: restarting ${config.worker !== undefined ? `worker ${config.worker}` : config.all ? 'every worker' : 'a worker'} of pool ${config.pool ?? '(the only pool)'} under debugpy, one at a time.`);
    const result = await session.request({
      type: 'debugWorkers',
      ...(config.pool ? { pool: config.pool } : {}),
      ...(config.worker !== undefined ? { worker: config.worker } : {}),
      ...(config.all ? { all: true } : {}),
      ...(config.pin ? { pin: true } : {}),
      ...(config.pinRoute ? { pinRoute: config.pinRoute } : {}),
      ...(debugpyPath ? { debugpyPath } : {}),
    });
    for (const w of result.workers) {
      this.log.info(`Worker ${w.id} of pool ${w.pool}: debugpy listening on 127.0.0.1:${w.port} (${w.debugpy}).`);
      this.debugging.add(key(session, w.pool));
    }
    if (!debugger_) {
      const ports = result.workers.map((w) => `127.0.0.1:${w.port}`).join(', ');
      const message = `ServeStack: the Python Debugger extension (${DEBUGPY_EXTENSION_ID}) is not installed, so VS Code cannot attach to the debugged worker${result.workers.length === 1 ? '' : 's'} (debugpy listens on ${ports}). Install it, then run Debug Workers again.`;
      this.lastMissingExtensionMessage = message;
      this.log.warn(message);
      void vscode.window.showWarningMessage(message, 'Install Python Debugger', 'Stop Debugging').then((choice) => {
        if (choice === 'Install Python Debugger') void vscode.commands.executeCommand('workbench.extensions.installExtension', DEBUGPY_EXTENSION_ID);
        else if (choice === 'Stop Debugging') void this.run('stop debugging', () => this.stopDebugging(session, config.pool));
      });
      return { workers: result.workers, attached: false };
    }
    for (const w of result.workers) await this.attach(session, w.pool, w.id, w.port, config.justMyCode);
    return { workers: result.workers, attached: true };
  }

  async stopDebugging(session: ServerSession, pool: string | undefined): Promise<void> {
    for (const k of [...this.debugging]) if (k.startsWith(`${session.dir}\0`) && (!pool || k === key(session, pool))) this.debugging.delete(k);
    this.log.info(`Stop Debugging: pool ${pool ?? 'every pool'} of ${session.folder.name} goes back to normal workers, one at a time.`);
    await session.request({ type: 'stopDebugging', ...(pool ? { pool } : {}) });
  }

  /** Every thread's stack of a worker, in a document; its "in app.py:N" line offers to open the file. */
  async dumpStack(session: ServerSession, worker: WorkerInfo): Promise<string> {
    const report = await session.request({ type: 'dumpStack', worker: worker.id });
    const text = formatStackReport(report, worker.id);
    const name = `/worker ${worker.id} stack ${++this.stackCount}.log`;
    this.stacks.set(name, text);
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: STACK_SCHEME, path: name }));
    await vscode.window.showTextDocument(doc, { preview: true });
    if (report.stuck) {
      const where = `${path.basename(report.stuck.file)}:${report.stuck.line} in ${report.stuck.function}`;
      void vscode.window.showInformationMessage(`Worker ${worker.pid ?? worker.id} is in ${where}.`, 'Open').then((choice) => choice && openLocation(session.dir, report.stuck!));
    }
    return text;
  }

  private async attach(session: ServerSession, pool: string, worker: number, port: number, justMyCode?: boolean): Promise<void> {
    if (this.attachedPorts.has(port)) return;
    this.attachedPorts.add(port);
    const marker: AttachMarker = { folder: session.dir, pool, worker, port };
    const ok = await vscode.debug.startDebugging(session.folder, {
      type: 'debugpy',
      request: 'attach',
      name: `ServeStack: ${pool} worker ${worker}`,
      connect: { host: '127.0.0.1', port },
      justMyCode: justMyCode ?? vscode.workspace.getConfiguration('debugpy', session.folder.uri).get<boolean>('debugJustMyCode', true),
      servestack: marker,
    });
    if (!ok) {
      this.attachedPorts.delete(port);
      this.log.warn(`Could not attach to worker ${worker} on 127.0.0.1:${port}; see the Debug Console.`);
    }
  }

  /** A reload replaces a debugged worker with a debugged one on a new port: attach to it too. */
  private attachNewWorkers(): void {
    if (!vscode.extensions.getExtension(DEBUGPY_EXTENSION_ID)) return;
    for (const session of this.supervisor.activeSessions()) {
      for (const w of session.workers.values()) {
        if (w.state === 'exited' || w.state === 'booting' || !w.debug?.port || this.attachedPorts.has(w.debug.port)) continue;
        if (this.debugging.has(key(session, w.pool))) void this.attach(session, w.pool, w.id, w.debug.port);
      }
    }
  }

  /** The user stopped an attach session of ours while its worker still runs: the pool rolls back. */
  private async onSessionEnded(debugSession: vscode.DebugSession): Promise<void> {
    const marker = debugSession.configuration.servestack as AttachMarker | undefined;
    if (debugSession.type !== 'debugpy' || !marker) return;
    this.attachedPorts.delete(marker.port);
    const session = this.supervisor.activeSessions().find((s) => s.dir === marker.folder);
    const worker = session?.workers.get(marker.worker);
    if (!session || !worker || worker.state === 'exited' || worker.state === 'draining') return; // it went (a reload): its successor is attached
    if (!this.debugging.has(key(session, marker.pool))) return;
    await this.run('stop debugging', () => this.stopDebugging(session, marker.pool));
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      this.log.error(`${what}: ${errorMessage(error)}`);
      void vscode.window.showErrorMessage(`ServeStack could not ${what}: ${errorMessage(error)}`, 'Show Logs').then((choice) => choice && this.log.show());
      return undefined;
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** launch.json's snippet and F5's dynamic entries; resolving one debugs the pool and starts no session of its own. */
class ServeStackDebugProvider implements vscode.DebugConfigurationProvider {
  constructor(private readonly debugging: WorkerDebugging, private readonly supervisor: Supervisor) {}

  provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): vscode.DebugConfiguration[] {
    const sessions = this.supervisor.activeSessions().filter((s) => !folder || s.dir === folder.uri.fsPath);
    const pools = [...new Set(sessions.flatMap((s) => s.pythonPools().map((p) => p.name)))];
    return (pools.length ? pools : ['web']).map((pool) => ({ type: DEBUG_TYPE, request: 'attach', name: `ServeStack: debug pool ${pool}`, pool }));
  }

  async resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): Promise<vscode.DebugConfiguration | undefined> {
    if (!config.type) {
      // F5 with no launch.json and no choice made: offer the pools.
      const [first] = this.provideDebugConfigurations(folder);
      if (!first) return undefined;
      Object.assign(config, first);
    }
    const target = folder ?? vscode.workspace.workspaceFolders?.[0];
    let session = this.supervisor.activeSessions().find((s) => !target || s.dir === target.uri.fsPath);
    if (!session && target) {
      await vscode.commands.executeCommand('servestack.serve', target);
      session = this.supervisor.sessionFor(target);
    }
    if (!session?.isActive) {
      void vscode.window.showErrorMessage('ServeStack: the workspace is not served, so there is no worker to debug.');
      return undefined;
    }
    const c = config as ServeStackDebugConfiguration;
    // Not awaited: the attach sessions it starts cannot start while this launch resolves.
    this.debugging.debugWorkers(session, { pool: c.pool, worker: c.worker, all: c.all, pin: c.pin ?? pinSetting(), pinRoute: c.pinRoute, justMyCode: c.justMyCode })
      .catch((error) => void vscode.window.showErrorMessage(`ServeStack could not debug pool ${c.pool ?? ''}: ${errorMessage(error)}`));
    // The debugpy attach sessions are the debugging; this configuration only started them.
    return undefined;
  }
}

function key(session: ServerSession, pool: string): string {
  return `${session.dir}\0${pool}`;
}

function pinSetting(): boolean {
  return vscode.workspace.getConfiguration('servestack').get<boolean>('debug.pinRequests', false);
}

/** servestack.debug.debugpyPath, else the debugpy the Python Debugger extension bundles. */
function debugpyFolder(extension: vscode.Extension<unknown> | undefined): string | undefined {
  const configured = vscode.workspace.getConfiguration('servestack').get<string>('debug.debugpyPath', '');
  if (configured) return configured;
  return extension ? path.join(extension.extensionPath, 'bundled', 'libs') : undefined;
}

async function pickPool(session: ServerSession): Promise<string | undefined> {
  const pools = session.pythonPools();
  if (pools.length <= 1) return pools[0]?.name;
  return (await vscode.window.showQuickPick(pools.map((p) => ({ label: p.name, description: p.app })), { placeHolder: 'Debug which pool?' }))?.label;
}

/** Opens a worker-reported file (absolute, or relative to the served folder) at its line. */
export async function openLocation(dir: string, location: StackLocation): Promise<void> {
  const file = path.isAbsolute(location.file) ? location.file : path.join(dir, location.file);
  const line = Math.max(0, location.line - 1);
  await vscode.window.showTextDocument(vscode.Uri.file(file), { selection: new vscode.Range(line, 0, line, 0), preview: false });
}
