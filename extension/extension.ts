// Activation only wires: each part registers itself and goes into context.subscriptions
// where it is created. Nothing here starts a server: that waits for Serve Workspace.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { detectFolder, starterConfigText } from '../server/config';
import { openInBrowser } from './browser';
import { registerCommands } from './commands';
import { ConfigActions } from './configActions';
import { ConfigDiagnostics } from './configDiagnostics';
import { DashboardPanel } from './dashboardPanel';
import { WorkerDebugging } from './debug';
import { CONFIG_FILE_NAME, configUri, exists } from './configFile';
import { ServerLog } from './logChannel';
import { onInterpreterChange } from './python';
import { PythonActions } from './pythonActions';
import { RoutesTreeProvider } from './routesTree';
import { StatusBar } from './statusBar';
import { registerTrustCommand } from './trust';
import { Supervisor } from './supervisor';
import { WorkersTreeProvider, type WorkersNode } from './workersTree';
import { registerTasks } from './tasks';

/** What activate returns: for the extension's own tests (and other extensions, read-only). */
export interface ServeStackApi {
  supervisor: Supervisor;
  workersTree: WorkersTreeProvider;
  routesTree: RoutesTreeProvider;
  statusBar: StatusBar;
  diagnostics: ConfigDiagnostics;
  log: ServerLog;
  debugging: WorkerDebugging;
}

let supervisor: Supervisor | undefined;

export function activate(context: vscode.ExtensionContext): ServeStackApi {
  const log = new ServerLog();
  context.subscriptions.push(log);

  const serverJs = context.asAbsolutePath(path.join('dist', 'cli.js'));
  supervisor = new Supervisor(serverJs, log, (session) => openInBrowser(session.served));
  context.subscriptions.push(supervisor);
  const sup = supervisor;

  let running: boolean | undefined;
  let anyDebugged: boolean | undefined;
  const setRunning = () => {
    const now = sup.activeSessions().length > 0;
    if (now !== running) void vscode.commands.executeCommand('setContext', 'servestack.running', (running = now));
    // "Return to Normal Workers" is offered only while a worker is debugged (it also kept "ServeStack: Stop" off the palette's top).
    const nowDebugging = sup.activeSessions().some((session) => [...session.workers.values()].some((w) => w.debug !== undefined));
    if (nowDebugging !== anyDebugged) void vscode.commands.executeCommand('setContext', 'servestack.debugging', (anyDebugged = nowDebugging));
  };
  context.subscriptions.push(sup.onDidChange(setRunning));
  setRunning();

  const workersTree = new WorkersTreeProvider(sup);
  const workersView = vscode.window.createTreeView('servestack.workers', { treeDataProvider: workersTree });
  context.subscriptions.push(workersTree, workersView);
  context.subscriptions.push(sup.onDidChange(() => {
    const sessions = sup.activeSessions();
    workersView.description = sessions.length === 1 ? sessions[0].url : undefined;
  }));

  // No polling: the server streams each worker's changed figures once a second.

  const routesTree = new RoutesTreeProvider(sup);
  context.subscriptions.push(routesTree, vscode.window.createTreeView('servestack.routes', { treeDataProvider: routesTree }));

  const statusBar = new StatusBar(sup, hasSomethingToServe);
  context.subscriptions.push(statusBar);

  registerCommands(context, {
    supervisor: sup,
    log,
    currentSession: () => statusBar.currentSession(),
    serverJs,
    starterConfig: async (folder) => starterConfigText(folder.uri.fsPath),
  });

  registerTasks(context, serverJs);

  // The dashboard: for the status bar's session, or the one a Workers view item belongs to.
  context.subscriptions.push(
    vscode.commands.registerCommand('servestack.openDashboard', () => DashboardPanel.show(context.extensionUri, sup, statusBar.currentSession())),
    vscode.commands.registerCommand('servestack.showInDashboard', (node?: WorkersNode) => DashboardPanel.show(
      context.extensionUri, sup, node?.session ?? statusBar.currentSession(),
      node?.kind === 'worker' ? { worker: node.worker.id, pool: node.pool.name } : node?.kind === 'pool' ? { pool: node.pool.name } : undefined,
    )),
    new vscode.Disposable(() => DashboardPanel.open?.dispose()),
  );

  registerTrustCommand(context, log);
  const debugging = new WorkerDebugging(sup, log);
  debugging.register(context, () => statusBar.currentSession());

  const diagnostics = new ConfigDiagnostics();
  context.subscriptions.push(diagnostics);
  context.subscriptions.push(sup.onStartFailure(({ session, code, message }) => {
    if (code === 'PORT_IN_USE') diagnostics.addServeFailure(configUri(session.folder), code, message);
  }));
  context.subscriptions.push(vscode.languages.registerCodeActionsProvider(
    { pattern: `**/${CONFIG_FILE_NAME}` },
    new ConfigActions(diagnostics),
    { providedCodeActionKinds: ConfigActions.kinds },
  ));
  context.subscriptions.push(vscode.languages.registerCodeActionsProvider(
    { language: 'python' },
    new PythonActions(),
    { providedCodeActionKinds: PythonActions.kinds },
  ));

  void onInterpreterChange(() => {
    if (sup.activeSessions().length) log.info('The selected Python interpreter changed: stop and serve again to use it.');
  }).then((d) => context.subscriptions.push(d));

  if (!vscode.workspace.isTrusted) {
    log.info('Restricted Mode: ServeStack checks servestack.json but does not serve until the workspace is trusted.');
  }

  return { supervisor: sup, workersTree, routesTree, statusBar, diagnostics, log, debugging };
}

/** Stops every server this window started; VS Code waits for the promise (within its limits). */
export function deactivate(): Promise<void> | undefined {
  return supervisor?.stopAll();
}

/** A folder with a config, an app ServeStack detects, or a static site. */
async function hasSomethingToServe(): Promise<boolean> {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') continue;
    if (await exists(configUri(folder))) return true;
    const detection = detectFolder(folder.uri.fsPath);
    if (detection.candidates.length > 0 || detection.staticSite) return true;
  }
  return false;
}
