// The status bar item: `$(server-process) web: 2 workers` while a server runs (click: a
// quick pick to scale, reload, open, stop), `$(play) Serve` when a folder has a config or
// an app to serve but nothing runs, hidden otherwise.
import * as vscode from 'vscode';
import type { ServerSession, Supervisor } from './supervisor';

export class StatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private servable = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly supervisor: Supervisor,
    /** Whether any workspace folder has something to serve (a config or a detected app). */
    private readonly hasSomethingToServe: () => Promise<boolean>,
  ) {
    this.item = vscode.window.createStatusBarItem('servestack.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'ServeStack';
    const watcher = vscode.workspace.createFileSystemWatcher('**/{servestack.json,*.py,index.html,package.json,pyproject.toml}');
    this.disposables.push(
      this.item,
      watcher,
      watcher.onDidCreate(() => this.scheduleRecheck()),
      watcher.onDidDelete(() => this.scheduleRecheck()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.recheckServable()),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.update()),
      vscode.window.onDidChangeActiveTextEditor(() => this.update()),
      supervisor.onDidChange(() => this.scheduleUpdate()),
    );
    void this.recheckServable();
  }

  private recheckTimer?: NodeJS.Timeout;
  private scheduleRecheck(): void {
    clearTimeout(this.recheckTimer);
    this.recheckTimer = setTimeout(() => void this.recheckServable(), 500);
  }

  private async recheckServable(): Promise<void> {
    this.servable = await this.hasSomethingToServe();
    this.update();
  }

  private scheduleUpdate(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.update(); }, 100);
  }

  /** The session the status bar speaks about: the active editor's folder's, else the first running one. */
  currentSession(): ServerSession | undefined {
    const sessions = this.supervisor.activeSessions();
    const uri = vscode.window.activeTextEditor?.document.uri;
    const folder = uri && vscode.workspace.getWorkspaceFolder(uri);
    return (folder && sessions.find((s) => s.folder.uri.toString() === folder.uri.toString())) ?? sessions[0];
  }

  update(): void {
    const session = this.currentSession();
    if (session) {
      this.showSession(session);
    } else if (this.servable) {
      this.item.text = '$(play) Serve';
      this.item.tooltip = vscode.workspace.isTrusted
        ? 'ServeStack: serve this workspace behind a proxy and a pool of workers'
        : 'ServeStack: serving is disabled in Restricted Mode (trust the workspace to serve it)';
      this.item.command = 'servestack.serve';
      this.item.backgroundColor = undefined;
      this.item.show();
    } else {
      this.item.hide();
    }
  }

  private showSession(session: ServerSession): void {
    const pools = session.pythonPools();
    const multi = this.supervisor.activeSessions().length > 1;
    const prefix = multi ? `${session.folder.name} · ` : '';
    if (session.state === 'starting' && pools.length === 0) {
      this.item.text = `$(loading~spin) ${prefix}ServeStack: starting…`;
    } else if (session.state === 'stopping') {
      this.item.text = `$(loading~spin) ${prefix}ServeStack: stopping…`;
    } else if (pools.length === 0) {
      this.item.text = `$(server-process) ${prefix}ServeStack`;
    } else {
      const parts = pools.map((p) => {
        if (p.state === 'backoff') return `${p.name}: app failed`;
        const n = p.wanted;
        return `${p.name}: ${n} worker${n === 1 ? '' : 's'}`;
      });
      this.item.text = `$(server-process) ${prefix}${parts.join(' · ')}`;
    }
    const failed = pools.some((p) => p.state === 'backoff');
    this.item.backgroundColor = failed ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;

    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**ServeStack** — ${session.folder.name}\n\n`);
    if (session.url) tooltip.appendMarkdown(`- URL: [${session.url}](${session.url})\n`);
    const rps = session.store.metrics?.rps;
    tooltip.appendMarkdown(`- Requests/s: ${rps !== undefined ? rps.toFixed(1) : '0'}\n`);
    for (const p of pools) {
      const up = session.workersOf(p.name).filter((w) => w.state === 'idle' || w.state === 'busy').length;
      tooltip.appendMarkdown(`- Pool \`${p.name}\`: ${up} of ${p.wanted} workers up${p.failure ? ` — ${p.failure.split('\n', 1)[0]}` : ''}\n`);
    }
    tooltip.appendMarkdown('\n[$(dashboard) Open Dashboard](command:servestack.openDashboard) — live charts, recent requests, replay\n\n');
    tooltip.appendMarkdown('Click to scale, reload, open in the browser or stop.');
    tooltip.isTrusted = { enabledCommands: ['servestack.openDashboard'] };
    // Metrics arrive every second: replace the tooltip only when it says something new, so
    // an open hover does not flicker.
    if (!(this.item.tooltip instanceof vscode.MarkdownString) || this.item.tooltip.value !== tooltip.value) this.item.tooltip = tooltip;
    // A plain command id: a command with arguments gets a new internal id on every update,
    // and a click racing an update (metrics arrive every second) would hit a stale one.
    this.item.command = 'servestack.statusBarMenu';
    this.item.show();
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.recheckTimer);
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
