// The Workers view: pool → workers (one folder level more in a multi-root workspace when
// several folders are served). Pools carry contextValue 'pool' (inline + / − scale
// buttons), workers 'worker' (Restart / Kill).
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PoolInfo, WorkerInfo, WorkerState } from '../server/protocol';
import { failureLocation } from './notifications';
import { TRUST_COMMAND } from './trust';
import type { ServerSession, Supervisor } from './supervisor';

export type WorkersNode =
  | { kind: 'folder'; session: ServerSession }
  | { kind: 'pool'; session: ServerSession; pool: PoolInfo }
  | { kind: 'worker'; session: ServerSession; pool: PoolInfo; worker: WorkerInfo }
  | { kind: 'message'; session: ServerSession; id: string; text: string; icon: vscode.ThemeIcon; tooltip?: string; command?: vscode.Command };

const STATE_ICONS: Record<WorkerState, vscode.ThemeIcon> = {
  booting: new vscode.ThemeIcon('loading~spin', new vscode.ThemeColor('charts.blue')),
  idle: new vscode.ThemeIcon('circle-outline', new vscode.ThemeColor('testing.iconPassed')),
  busy: new vscode.ThemeIcon('pulse', new vscode.ThemeColor('charts.yellow')),
  draining: new vscode.ThemeIcon('arrow-circle-down', new vscode.ThemeColor('charts.orange')),
  exited: new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('testing.iconFailed')),
};

export class WorkersTreeProvider implements vscode.TreeDataProvider<WorkersNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<WorkersNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly subscription: vscode.Disposable;
  private refreshTimer?: NodeJS.Timeout;

  constructor(private readonly supervisor: Supervisor) {
    this.subscription = supervisor.onDidChange(() => this.scheduleRefresh());
  }

  /** Worker events come in bursts (a scale, a reload): one refresh per 150 ms at most. */
  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.changeEmitter.fire(undefined);
    }, 150);
  }

  getChildren(node?: WorkersNode): WorkersNode[] {
    if (!node) {
      const sessions = this.supervisor.activeSessions();
      if (sessions.length === 1) return this.poolsOf(sessions[0]);
      return sessions.map((session) => ({ kind: 'folder', session }));
    }
    switch (node.kind) {
      case 'folder': return this.poolsOf(node.session);
      case 'pool': return this.workersOf(node.session, node.pool);
      default: return [];
    }
  }

  private poolsOf(session: ServerSession): WorkersNode[] {
    const pools = [...session.pools.values()].map((pool): WorkersNode => ({ kind: 'pool', session, pool }));
    const notices: WorkersNode[] = [];
    const https = session.store.https;
    if (https?.mode === 'auto' && https.trusted === false) {
      notices.push({
        kind: 'message', session, id: 'https-untrusted', text: 'HTTPS not trusted yet',
        icon: new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')),
        tooltip: 'Browsers warn about this server\'s certificate until ServeStack\'s local certificate authority is trusted. Click to trust it in Chromium and Firefox (or run `servestack trust`).',
        command: { command: TRUST_COMMAND, title: 'Trust Local HTTPS' },
      });
    }
    if (pools.length) return [...notices, ...pools];
    const text = session.state === 'starting' ? 'Starting the server…' : session.state === 'stopping' ? 'Stopping…' : 'No pools';
    return [...notices, { kind: 'message', session, id: 'status', text, icon: new vscode.ThemeIcon(session.state === 'starting' ? 'loading~spin' : 'info') }];
  }

  private workersOf(session: ServerSession, pool: PoolInfo): WorkersNode[] {
    const nodes: WorkersNode[] = [];
    if (pool.failure) {
      const location = failureLocation(pool, session.dir);
      nodes.push({
        kind: 'message', session, id: `failure:${pool.name}`, text: pool.failure.split('\n', 1)[0],
        icon: new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')), tooltip: pool.failure,
        command: location ? {
          command: 'vscode.open', title: 'Open',
          arguments: [vscode.Uri.file(location.file), { selection: new vscode.Range(location.line - 1, 0, location.line - 1, 0) }],
        } : { command: 'servestack.showLogs', title: 'Show Logs' },
      });
    }
    for (const worker of session.workersOf(pool.name)) nodes.push({ kind: 'worker', session, pool, worker });
    return nodes;
  }

  getTreeItem(node: WorkersNode): vscode.TreeItem {
    const key = node.session.folder.uri.toString();
    switch (node.kind) {
      case 'folder': {
        const item = new vscode.TreeItem(node.session.folder.name, vscode.TreeItemCollapsibleState.Expanded);
        item.id = `${key}`;
        item.description = node.session.url;
        item.iconPath = new vscode.ThemeIcon('root-folder');
        item.contextValue = 'folder';
        return item;
      }
      case 'pool': return poolItem(node.session, node.pool, key);
      case 'worker': return workerItem(node.worker, key, node.session.dir);
      case 'message': {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        item.id = `${key}/${node.id}`;
        item.iconPath = node.icon;
        item.tooltip = node.tooltip;
        item.command = node.command;
        item.contextValue = 'message';
        return item;
      }
    }
  }

  getParent(node: WorkersNode): WorkersNode | undefined {
    if (node.kind === 'worker') return { kind: 'pool', session: node.session, pool: node.pool };
    if (node.kind !== 'folder' && this.supervisor.activeSessions().length > 1) return { kind: 'folder', session: node.session };
    return undefined;
  }

  dispose(): void {
    clearTimeout(this.refreshTimer);
    this.subscription.dispose();
    this.changeEmitter.dispose();
  }
}

function poolItem(session: ServerSession, pool: PoolInfo, key: string): vscode.TreeItem {
  const item = new vscode.TreeItem(pool.name, vscode.TreeItemCollapsibleState.Expanded);
  item.id = `${key}/pool:${pool.name}`;
  const up = session.store.upWorkers(pool.name);
  const target = pool.app ?? pool.command ?? '';
  if (pool.kind === 'python') {
    item.description = `${up === pool.wanted ? `${up}` : `${up}/${pool.wanted}`} worker${pool.wanted === 1 ? '' : 's'} · ${target}`;
    item.contextValue = 'pool';
  } else {
    item.description = target;
    item.contextValue = 'commandPool';
  }
  if (pool.state === 'backoff') {
    item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
    item.description = `${item.description} · app failed to load`;
  } else {
    item.iconPath = new vscode.ThemeIcon(pool.kind === 'python' ? 'server-process' : 'terminal');
  }
  const rps = session.store.metrics?.pools[pool.name]?.rps;
  const tooltip = new vscode.MarkdownString(undefined, true);
  tooltip.appendMarkdown(`**Pool ${pool.name}** (${pool.kind})\n\n`);
  tooltip.appendMarkdown(`- ${pool.kind === 'python' ? 'App' : 'Command'}: \`${target}\`\n`);
  if (pool.kind === 'python') tooltip.appendMarkdown(`- Workers: ${up} up, ${pool.wanted} wanted\n`);
  tooltip.appendMarkdown(`- State: ${pool.state}\n`);
  if (rps !== undefined) tooltip.appendMarkdown(`- Requests/s: ${rps.toFixed(1)}\n`);
  if (pool.failure) tooltip.appendMarkdown(`\n---\n\n${escapeMarkdown(pool.failure)}\n`);
  item.tooltip = tooltip;
  return item;
}

function workerItem(worker: WorkerInfo, key: string, dir: string): vscode.TreeItem {
  const item = new vscode.TreeItem(worker.pid !== undefined ? `pid ${worker.pid}` : `worker ${worker.id}`, vscode.TreeItemCollapsibleState.None);
  item.id = `${key}/worker:${worker.id}`;
  const inFlight = worker.inFlight ? ` (${worker.inFlight} in flight)` : '';
  item.description = `${worker.state} · ${worker.requests} req${inFlight}`;
  item.iconPath = STATE_ICONS[worker.state];
  item.contextValue = 'worker';
  const tooltip = new vscode.MarkdownString();
  tooltip.appendMarkdown(`**Worker ${worker.id}** of pool ${worker.pool}\n\n`);
  tooltip.appendMarkdown(`- PID: ${worker.pid ?? 'not yet'}\n`);
  tooltip.appendMarkdown(`- State: ${worker.state}\n`);
  tooltip.appendMarkdown(`- Requests: ${worker.requests} handled, ${worker.inFlight} in flight\n`);
  tooltip.appendMarkdown(`- Memory: ${worker.rssBytes !== undefined ? formatBytes(worker.rssBytes) : 'unknown'}\n`);
  if (worker.cpuPercent !== undefined) tooltip.appendMarkdown(`- CPU: ${worker.cpuPercent.toFixed(1)} % of a core\n`);
  tooltip.appendMarkdown(`- Uptime: ${formatDuration(Date.now() - worker.startedAt)}\n`);
  tooltip.appendMarkdown(`- Generation: ${worker.generation}\n`);
  item.tooltip = tooltip;
  decorateDebugged(item, worker, dir, tooltip);
  return item;
}

/** Under debugpy: "paused in debugger" or the port; after a timeout: "last timeout: stuck in app.py:42 in slow_query", a click away. */
function decorateDebugged(item: vscode.TreeItem, worker: WorkerInfo, dir: string, tooltip: vscode.MarkdownString): void {
  const debug = worker.debug;
  if (debug) {
    const where = debug.where ? ` · ${path.basename(debug.where.file)}:${debug.where.line}` : '';
    const pinned = debug.pinned ? ` · pinned${typeof debug.pinned === 'object' ? ` ${debug.pinned.route}` : ''}` : '';
    item.description = debug.paused ? `paused in debugger${where}${pinned}` : `${item.description} · debugpy :${debug.port}${pinned}`;
    item.iconPath = new vscode.ThemeIcon(debug.paused ? 'debug-pause' : 'debug-alt', new vscode.ThemeColor('debugIcon.startForeground'));
    tooltip.appendMarkdown(`- Debugging: debugpy on 127.0.0.1:${debug.port}${debug.debugpy ? ` (${debug.debugpy})` : ''}; no request timeout or heartbeat check\n`);
    if (debug.where) item.command = { command: 'servestack.openStackLocation', title: 'Open', arguments: [dir, debug.where] };
  }
  const last = worker.lastTimeout;
  if (last) {
    item.description = `${item.description} · last timeout: stuck in ${path.basename(last.file)}:${last.line} in ${last.function}`;
    tooltip.appendMarkdown(`- Last timeout: stuck in \`${last.file}:${last.line}\` in \`${last.function}\` (click to open)\n`);
    if (!item.command) item.command = { command: 'servestack.openStackLocation', title: 'Open', arguments: [dir, last] };
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!<>|]/g, '\\$&').replace(/\n/g, '  \n');
}
