// The Routes view: path → target with a kind icon. From the running server when there is
// one (what it actually routes), else from servestack.json. A click reveals the route in
// servestack.json; routes of a running server can be opened in the browser.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RouteInfo } from '../server/protocol';
import { configUri, readText, routesInText } from './configFile';
import type { Supervisor } from './supervisor';

export type RoutesNode =
  | { kind: 'folder'; folder: vscode.WorkspaceFolder; routes: RouteInfo[]; running: boolean }
  | { kind: 'route'; folder: vscode.WorkspaceFolder; route: RouteInfo; running: boolean };

// 'file-directory', not 'folder': ThemeIcon 'folder' is the file icon theme's folder, drawn with a twistie's indent.
const KIND_ICONS: Record<RouteInfo['kind'], string> = { static: 'file-directory', pool: 'server-process', proxy: 'globe' };

export class RoutesTreeProvider implements vscode.TreeDataProvider<RoutesNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<RoutesNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private refreshTimer?: NodeJS.Timeout;

  constructor(private readonly supervisor: Supervisor) {
    const watcher = vscode.workspace.createFileSystemWatcher(`**/servestack.json`);
    this.disposables.push(
      watcher,
      watcher.onDidChange(() => this.refresh()),
      watcher.onDidCreate(() => this.refresh()),
      watcher.onDidDelete(() => this.refresh()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh()),
      vscode.workspace.onDidChangeTextDocument((e) => { if (e.document.uri.path.endsWith('/servestack.json')) this.refresh(); }),
      supervisor.onDidChange(() => this.refresh()),
    );
  }

  refresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.changeEmitter.fire(undefined);
    }, 200);
  }

  async getChildren(node?: RoutesNode): Promise<RoutesNode[]> {
    if (node?.kind === 'folder') return node.routes.map((route) => ({ kind: 'route', folder: node.folder, route, running: node.running }));
    if (node) return [];
    const folders = vscode.workspace.workspaceFolders ?? [];
    const groups = await Promise.all(folders.map((folder) => this.routesOf(folder)));
    const nonEmpty = groups.filter((g) => g.routes.length > 0);
    if (nonEmpty.length === 1) return this.getChildren(nonEmpty[0]);
    return nonEmpty;
  }

  private async routesOf(folder: vscode.WorkspaceFolder): Promise<Extract<RoutesNode, { kind: 'folder' }>> {
    const session = this.supervisor.sessionFor(folder);
    if (session?.state === 'running' && session.store.routes.length) {
      return { kind: 'folder', folder, routes: session.store.routes, running: true };
    }
    const text = await readText(configUri(folder));
    return { kind: 'folder', folder, routes: text ? routesInText(text) : [], running: false };
  }

  getTreeItem(node: RoutesNode): vscode.TreeItem {
    if (node.kind === 'folder') {
      const item = new vscode.TreeItem(node.folder.name, vscode.TreeItemCollapsibleState.Expanded);
      item.id = node.folder.uri.toString();
      item.iconPath = new vscode.ThemeIcon('root-folder');
      item.description = node.running ? 'running' : undefined;
      return item;
    }
    const route = displayed(node.folder, node.route);
    const item = new vscode.TreeItem(route.path, vscode.TreeItemCollapsibleState.None);
    item.id = `${node.folder.uri.toString()}/route:${route.index}:${route.path}`;
    item.description = describeTarget(route);
    item.iconPath = new vscode.ThemeIcon(KIND_ICONS[route.kind]);
    item.contextValue = node.running ? 'route' : 'routeIdle';
    item.tooltip = new vscode.MarkdownString(`\`${route.path}\` → ${describeTarget(route)}\n\nClick to reveal it in servestack.json.`);
    item.command = { command: 'servestack.revealRoute', title: 'Reveal Route', arguments: [node] };
    return item;
  }

  dispose(): void {
    clearTimeout(this.refreshTimer);
    for (const d of this.disposables.splice(0)) d.dispose();
    this.changeEmitter.dispose();
  }
}

/** Static roots come back absolute from the server: show them relative to the folder. */
function displayed(folder: vscode.WorkspaceFolder, route: RouteInfo): RouteInfo {
  if (route.kind !== 'static' || !path.isAbsolute(route.target)) return route;
  const relative = path.relative(folder.uri.fsPath, route.target);
  return relative.startsWith('..') ? route : { ...route, target: relative || '.' };
}

export function describeTarget(route: RouteInfo): string {
  switch (route.kind) {
    case 'static': return `static ${route.target}`;
    case 'pool': return `pool ${route.target}`;
    case 'proxy': return `proxy ${route.target}`;
  }
}
