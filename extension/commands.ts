// The command handlers. Each one resolves what it acts on (a folder, a server, a pool, a
// worker: from its argument when a view, the status bar or a code action gave one, else
// from the active editor, else by asking) and then calls the supervisor or the server.
// Notifications are never awaited on a command's path, so commands resolve promptly.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PoolInfo } from '../server/protocol';
import { openInBrowser as openUrl } from './browser';
import { CONFIG_FILE_NAME, configUri, exists, routeRange } from './configFile';
import type { ServerLog } from './logChannel';
import type { RoutesNode } from './routesTree';
import { errorMessage, ServerSession, type Supervisor } from './supervisor';
import type { WorkersNode } from './workersTree';
import { LanPanel, serveOnNetwork } from './lan';

/** Most workers the UI offers to scale to; the server has its own limits. */
const MAX_WORKERS = 64;

export interface CommandDeps {
  supervisor: Supervisor;
  log: ServerLog;
  /** The session the status bar shows (the active editor's folder's, else the first). */
  currentSession: () => ServerSession | undefined;
  /** The server bundle (dist/cli.js), also the CLI. */
  serverJs: string;
  /** The starter servestack.json text for a folder. */
  starterConfig: (folder: vscode.WorkspaceFolder) => Promise<string>;
}

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const { supervisor, log } = deps;
  const register = (id: string, handler: (...args: any[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));

  // ── Folders and sessions ─────────────────────────────────────────────────────────
  async function pickFolder(arg: unknown, placeHolder: string): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (arg instanceof vscode.Uri) return vscode.workspace.getWorkspaceFolder(arg);
    if (isWorkspaceFolder(arg)) return arg;
    if (folders.length === 0) {
      void vscode.window.showInformationMessage('ServeStack: open a folder to serve it.', 'Open Folder')
        .then((choice) => choice && vscode.commands.executeCommand('workbench.action.files.openFolder'));
      return undefined;
    }
    if (folders.length === 1) return folders[0];
    const items = folders.map((folder) => {
      const session = supervisor.sessionFor(folder);
      return { label: folder.name, description: session?.isActive ? `running at ${session.url ?? '…'}` : undefined, detail: folder.uri.fsPath, folder };
    });
    return (await vscode.window.showQuickPick(items, { placeHolder }))?.folder;
  }

  async function pickSession(arg: unknown): Promise<ServerSession | undefined> {
    if (arg instanceof ServerSession) return arg;
    if (isNode(arg) && 'session' in arg) return arg.session as ServerSession;
    if (arg instanceof vscode.Uri || isWorkspaceFolder(arg) || (isNode(arg) && 'folder' in arg)) {
      const folder = arg instanceof vscode.Uri ? vscode.workspace.getWorkspaceFolder(arg) : isWorkspaceFolder(arg) ? arg : (arg as { folder: vscode.WorkspaceFolder }).folder;
      const session = folder && supervisor.sessionFor(folder);
      if (session?.isActive) return session;
    }
    const sessions = supervisor.activeSessions();
    if (sessions.length === 0) {
      void vscode.window.showInformationMessage('ServeStack: no server runs.', 'Serve Workspace')
        .then((choice) => choice && vscode.commands.executeCommand('servestack.serve'));
      return undefined;
    }
    if (sessions.length === 1) return sessions[0];
    const current = deps.currentSession();
    const items = sessions.map((session) => ({ label: session.folder.name, description: session.url, session }));
    if (current) items.sort((a, b) => (a.session === current ? -1 : b.session === current ? 1 : 0));
    return (await vscode.window.showQuickPick(items, { placeHolder: 'Which server?' }))?.session;
  }

  async function pickPool(session: ServerSession, arg: unknown, placeHolder: string): Promise<PoolInfo | undefined> {
    if (isNode(arg) && arg.kind === 'pool') return (arg as Extract<WorkersNode, { kind: 'pool' }>).pool;
    const pools = session.pythonPools();
    if (pools.length === 0) {
      void vscode.window.showInformationMessage(`ServeStack: ${session.folder.name} has no pool of Python workers to scale.`);
      return undefined;
    }
    if (pools.length === 1) return pools[0];
    const items = pools.map((pool) => ({ label: pool.name, description: `${pool.wanted} workers · ${pool.app ?? ''}`, pool }));
    return (await vscode.window.showQuickPick(items, { placeHolder }))?.pool;
  }

  /** Run a control command, turning a failure into a notification with Show Logs. */
  async function control<T>(what: string, run: () => Promise<T>): Promise<T | undefined> {
    try {
      return await run();
    } catch (error) {
      log.error(`${what}: ${errorMessage(error)}`);
      void vscode.window.showErrorMessage(`ServeStack could not ${what}: ${errorMessage(error)}`, 'Show Logs')
        .then((choice) => choice && log.show());
      return undefined;
    }
  }

  async function scale(session: ServerSession, pool: PoolInfo, workers: number): Promise<void> {
    const n = Math.max(1, Math.min(MAX_WORKERS, Math.round(workers)));
    log.info(`Scaling pool ${pool.name} of ${session.folder.name} to ${n} worker${n === 1 ? '' : 's'}.`);
    await control(`scale pool ${pool.name}`, () => session.request({ type: 'scale', pool: pool.name, workers: n }));
  }

  async function askCount(pool: PoolInfo): Promise<number | undefined> {
    const text = await vscode.window.showInputBox({
      title: `Workers for pool ${pool.name}`,
      prompt: `How many workers should pool '${pool.name}' run? (now ${pool.wanted})`,
      value: String(pool.wanted),
      validateInput: (value) => {
        const n = Number(value);
        return Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS ? undefined : `A whole number from 1 to ${MAX_WORKERS}.`;
      },
    });
    return text === undefined ? undefined : Number(text);
  }

  const openInBrowser = (session: ServerSession, pathname = '/') => openUrl(session.served, pathname);

  // ── The commands ───────────────────────────────────────────────────────────────────
  register('servestack.serve', async (arg?: unknown) => {
    const folder = await pickFolder(arg, 'Which folder should ServeStack serve?');
    if (!folder) return undefined;
    const session = await supervisor.serve(folder);
    return session?.url;
  });

  register('servestack.stop', async (arg?: unknown) => {
    const session = await pickSession(arg);
    if (session) await supervisor.stop(session);
  });

  register('servestack.reloadWorkers', async (arg?: unknown) => {
    const session = await pickSession(arg);
    if (!session) return;
    const pool = isNode(arg) && arg.kind === 'pool' ? (arg as Extract<WorkersNode, { kind: 'pool' }>).pool.name : undefined;
    const status = vscode.window.setStatusBarMessage(`$(sync~spin) ServeStack: reloading ${pool ?? 'workers'}…`);
    try {
      await control('reload the workers', () => session.request({ type: 'reload', ...(pool ? { pool } : {}) }));
    } finally {
      status.dispose();
    }
  });

  register('servestack.scaleWorkers', async (arg?: unknown, count?: number) => {
    const session = await pickSession(arg);
    const pool = session && (await pickPool(session, arg, 'Scale which pool?'));
    if (!session || !pool) return;
    const n = typeof count === 'number' ? count : await askCount(pool);
    if (n !== undefined) await scale(session, pool, n);
  });

  register('servestack.addWorker', async (arg?: unknown) => {
    const session = await pickSession(arg);
    const pool = session && (await pickPool(session, arg, 'Add a worker to which pool?'));
    if (session && pool) await scale(session, pool, pool.wanted + 1);
  });

  register('servestack.removeWorker', async (arg?: unknown) => {
    const session = await pickSession(arg);
    const pool = session && (await pickPool(session, arg, 'Remove a worker from which pool?'));
    if (!session || !pool) return;
    if (pool.wanted <= 1) {
      void vscode.window.showInformationMessage(`Pool '${pool.name}' runs one worker, the fewest it can. Use Stop to stop the server.`);
      return;
    }
    await scale(session, pool, pool.wanted - 1);
  });

  register('servestack.restartWorker', async (node?: WorkersNode) => {
    if (node?.kind !== 'worker') return;
    const { session, worker } = node;
    log.info(`Restarting worker ${worker.pid ?? worker.id} of pool ${worker.pool}.`);
    await control(`restart worker ${worker.pid ?? worker.id}`, () => session.request({ type: 'restartWorker', worker: worker.id }));
  });

  register('servestack.killWorker', async (node?: WorkersNode) => {
    if (node?.kind !== 'worker') return;
    const { session, worker } = node;
    log.warn(`Killing worker ${worker.pid ?? worker.id} of pool ${worker.pool}; the pool starts another.`);
    await control(`kill worker ${worker.pid ?? worker.id}`, () => session.request({ type: 'killWorker', worker: worker.id }));
  });

  register('servestack.openInBrowser', async (arg?: unknown) => {
    const session = await pickSession(arg);
    if (session) return openInBrowser(session);
    return false;
  });

  register('servestack.openRouteInBrowser', async (node?: RoutesNode) => {
    if (node?.kind !== 'route') return;
    const session = supervisor.sessionFor(node.folder);
    if (!session?.isActive) {
      void vscode.window.showInformationMessage(`ServeStack: ${node.folder.name} is not served.`, 'Serve Workspace')
        .then((choice) => choice && vscode.commands.executeCommand('servestack.serve', node.folder));
      return;
    }
    await openInBrowser(session, node.route.path);
  });

  register('servestack.revealRoute', async (node?: RoutesNode | { folder: vscode.WorkspaceFolder; index: number }) => {
    if (!node) return;
    const folder = node.folder;
    const index = 'route' in node ? node.route.index : 'index' in node ? node.index : 0;
    const uri = configUri(folder);
    if (!(await exists(uri))) {
      void vscode.window.showInformationMessage(`${folder.name} has no ${CONFIG_FILE_NAME}: its routes were detected.`, 'Create Config')
        .then((choice) => choice && vscode.commands.executeCommand('servestack.createConfig', folder));
      return;
    }
    const document = await vscode.workspace.openTextDocument(uri);
    const range = routeRange(document, index);
    const editor = await vscode.window.showTextDocument(document, { preview: true });
    if (range) {
      editor.selection = new vscode.Selection(range.start, range.end);
      editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    }
  });

  register('servestack.showLogs', () => log.show());

  register('servestack.createConfig', async (arg?: unknown) => {
    const folder = await pickFolder(arg, 'Create servestack.json in which folder?');
    if (!folder) return undefined;
    const uri = configUri(folder);
    if (!(await exists(uri))) {
      const edit = new vscode.WorkspaceEdit();
      edit.createFile(uri, { ignoreIfExists: true, contents: new TextEncoder().encode(await deps.starterConfig(folder)) });
      if (!(await vscode.workspace.applyEdit(edit))) {
        void vscode.window.showErrorMessage(`ServeStack could not create ${uri.fsPath}.`);
        return undefined;
      }
      log.info(`Created ${uri.fsPath}.`);
    }
    await vscode.window.showTextDocument(uri);
    return uri;
  });

  // `servestack export DIR --out OUT` of the bundled CLI: writes the files, then opens nginx.conf.
  register('servestack.exportForProduction', async (arg?: unknown, outArg?: string) => {
    const folder = await pickFolder(arg, 'Export which folder for production?');
    if (!folder) return undefined;
    const out = outArg ?? path.join(folder.uri.fsPath, 'deploy');
    const result = await runCli(deps.serverJs, ['export', folder.uri.fsPath, '--out', out], folder.uri.fsPath);
    const output = `${result.stdout}${result.stderr}`.trim();
    if (output) log.info(`export: ${output}`);
    if (result.code !== 0) {
      const reason = (result.stderr || result.stdout).trim().split('\n').filter((l) => /error/.test(l))[0] ?? (result.stderr || result.stdout).trim().split('\n', 1)[0];
      void vscode.window.showErrorMessage(`ServeStack could not export ${folder.name}: ${reason}`, 'Show Logs')
        .then((choice) => choice && log.show());
      return 'failed';
    }
    await vscode.window.showTextDocument(vscode.Uri.file(path.join(out, 'nginx.conf')), { preview: false });
    const warnings = (result.stdout.match(/: warning: .*\[EXPORT_[A-Z_]+\]$/gm) ?? []).length;
    const where = path.relative(folder.uri.fsPath, out) || out;
    const message = warnings
      ? `ServeStack exported ${folder.name} to ${where}, with ${warnings} warning${warnings === 1 ? '' : 's'} about what production does differently (see README.md there, or the log).`
      : `ServeStack exported ${folder.name} for production to ${where}: nginx.conf, gunicorn.conf.py, systemd units and a README.`;
    void vscode.window.showInformationMessage(message, 'Open README', 'Reveal in Explorer').then((choice) => {
      if (choice === 'Open README') void vscode.window.showTextDocument(vscode.Uri.file(path.join(out, 'README.md')));
      else if (choice) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
    });
    return out;
  });

  register('servestack.statusBarMenu', async (arg?: unknown) => {
    const session = arg === undefined ? (deps.currentSession() ?? (await pickSession(undefined))) : await pickSession(arg);
    if (!session) return;
    const pools = session.pythonPools();
    const workers = pools.length === 1 ? ` (now ${pools[0].wanted})` : '';
    type Item = vscode.QuickPickItem & { run: () => Thenable<unknown> | Promise<unknown> };
    const items: Item[] = [];
    if (pools.length) {
      items.push(
        { label: '$(add) Add a worker', description: workers, run: () => vscode.commands.executeCommand('servestack.addWorker', session) },
        { label: '$(remove) Remove a worker', description: workers, run: () => vscode.commands.executeCommand('servestack.removeWorker', session) },
        { label: '$(symbol-number) Set the number of workers…', run: () => vscode.commands.executeCommand('servestack.scaleWorkers', session) },
        { label: '$(refresh) Reload workers', description: 'one at a time, no request fails', run: () => vscode.commands.executeCommand('servestack.reloadWorkers', session) },
      );
    }
    items.push(
      { label: '$(link-external) Open in browser', description: session.url, run: () => openInBrowser(session) },
      { label: '$(output) Show logs', run: async () => log.show() },
      { label: '$(debug-stop) Stop', description: session.folder.name, run: () => supervisor.stop(session) },
    );
    const choice = await vscode.window.showQuickPick(items, { placeHolder: `ServeStack — ${session.folder.name}${session.url ? ` at ${session.url}` : ''}` });
    await choice?.run();
  });

  // Opt-in for this run only; the modal says who can reach the app. `confirmed` is for tests, which cannot answer a modal.
  register('servestack.serveOnNetwork', async (arg?: unknown, confirmed?: boolean) => {
    const folder = await pickFolder(arg, 'Serve which folder on your network?');
    if (!folder) return undefined;
    const session = await serveOnNetwork(supervisor, folder, context.extensionUri, confirmed === true);
    return session?.lanUrl;
  });

  register('servestack.showNetworkUrl', async (arg?: unknown) => {
    const session = await pickSession(arg);
    if (!session) return undefined;
    if (!session.lanUrl) {
      void vscode.window.showInformationMessage(`ServeStack serves ${session.folder.name} on this machine only.`, 'Serve on My Network')
        .then((choice) => choice && vscode.commands.executeCommand('servestack.serveOnNetwork', session.folder));
      return undefined;
    }
    return (await LanPanel.show(context.extensionUri, session.folder.name, session.lanUrl)).url;
  });

  register('servestack.createFolder', async (uri?: vscode.Uri) => {
    if (!(uri instanceof vscode.Uri)) return;
    await vscode.workspace.fs.createDirectory(uri);
    log.info(`Created the folder ${uri.fsPath}.`);
  });
}

function isWorkspaceFolder(value: unknown): value is vscode.WorkspaceFolder {
  return typeof value === 'object' && value !== null && 'uri' in value && 'index' in value && 'name' in value && !('kind' in value);
}

function isNode(value: unknown): value is { kind: string } {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}

/** Run a verb of the bundled CLI as a plain Node process. */
function runCli(serverJs: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [serverJs, ...args], {
      cwd, timeout: 60_000, windowsHide: true, maxBuffer: 4 * 1024 * 1024,
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (error && typeof error.code !== 'number' ? error.message : '')) });
    });
  });
}
