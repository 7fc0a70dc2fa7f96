// "ServeStack: Open Dashboard": the dashboard page (media/dashboard, the same files the
// server serves to a browser tab) in one webview panel. Strict CSP with a nonce from
// crypto, resources only from media/dashboard through asWebviewUri, the editor's theme
// colours (the page's CSS reads the --vscode-* variables). The webview has no network:
// the page's commands and the server's events travel as messages, relayed over the
// session's own control connection, and its state comes from the session store.
import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import { newNonce, renderPage } from '../server/control/dashboardPage';
import type { ControlEvent, ControlRequest } from '../server/protocol';
import type { ServerSession, Supervisor } from './supervisor';

/** What the page sends: its commands, and "ready" once it listens. */
type PageMessage = { type: 'ready' } | { type: 'command'; id: number; command: ControlRequest };

/** Events the page does not draw (the log has its own channel). */
const NOT_RELAYED = new Set<ControlEvent['type']>(['log', 'config']);

export class DashboardPanel implements vscode.Disposable {
  private static current: DashboardPanel | undefined;

  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  private session: ServerSession | undefined;
  private sessionSubscriptions: { dispose(): void }[] = [];
  private pageReady = false;
  private focus: { worker?: number; pool?: string } | undefined;
  /** The page got a snapshot of the current session while it ran. */
  private attachedToLive = false;

  /** Show the dashboard of `session` (or of the folder it was showing), creating the panel once. */
  static show(extensionUri: vscode.Uri, supervisor: Supervisor, session: ServerSession | undefined, focus?: { worker?: number; pool?: string }): DashboardPanel {
    const existing = DashboardPanel.current;
    if (existing) {
      // Where it is: moving a webview to another column reloads its page.
      existing.panel.reveal(existing.panel.viewColumn);
      existing.focus = focus;
      const sameSession = (session ?? existing.session) === existing.session;
      existing.follow(session ?? existing.session);
      // A page already showing this session gets the focus at once, not only after the
      // snapshot the follow asks for (that round trip can land after a reload of the page).
      if (sameSession && existing.pageReady && focus) existing.post({ type: 'focus', ...focus });
      return existing;
    }
    const panel = new DashboardPanel(extensionUri, supervisor, session, focus);
    DashboardPanel.current = panel;
    return panel;
  }

  /** The open panel, for the extension's tests. */
  static get open(): DashboardPanel | undefined { return DashboardPanel.current; }

  private constructor(private readonly extensionUri: vscode.Uri, private readonly supervisor: Supervisor, session: ServerSession | undefined, focus?: { worker?: number; pool?: string }) {
    const media = vscode.Uri.joinPath(extensionUri, 'media', 'dashboard');
    this.panel = vscode.window.createWebviewPanel('servestack.dashboard', 'ServeStack Dashboard', vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [media],
    });
    this.panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'servestack.svg');
    this.focus = focus;
    this.disposables.push(
      this.panel.onDidDispose(() => this.dispose()),
      this.panel.webview.onDidReceiveMessage((message: PageMessage) => void this.onMessage(message)),
      // A server started again for the folder is a new session: follow it.
      supervisor.onDidChange(() => {
        const folder = this.session?.folder;
        const now = folder ? supervisor.sessionFor(folder) : supervisor.activeSessions()[0];
        if (now !== this.session || (now && !this.attachedToLive && now.state === 'running')) this.follow(now);
      }),
    );
    this.follow(session);
    void this.render(media);
  }

  private async render(media: vscode.Uri): Promise<void> {
    const webview = this.panel.webview;
    const html = await readFile(vscode.Uri.joinPath(media, 'index.html').fsPath, 'utf8');
    const nonce = newNonce();
    const csp = [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src ${webview.cspSource}`,
      `img-src ${webview.cspSource} data:`,
      `font-src ${webview.cspSource}`,
    ].join('; ');
    webview.html = renderPage(html, { assets: `${webview.asWebviewUri(media).toString()}/`, nonce, csp, transport: 'vscode' });
  }

  private follow(session: ServerSession | undefined): void {
    for (const s of this.sessionSubscriptions.splice(0)) s.dispose();
    this.session = session;
    this.attachedToLive = false;
    this.panel.title = session ? `ServeStack Dashboard — ${session.folder.name}` : 'ServeStack Dashboard';
    if (!session) {
      this.post({ type: 'status', status: 'down', detail: 'no server runs: ServeStack: Serve Workspace' });
      return;
    }
    this.sessionSubscriptions.push(session.store.onEvent((event) => {
      if (this.pageReady && !NOT_RELAYED.has(event.type)) this.post({ type: 'event', event });
      if (event.type === 'stopping') this.post({ type: 'status', status: 'down', detail: 'the server is stopping' });
    }));
    if (this.pageReady) void this.sendSnapshot();
  }

  /** The page (re)loaded, or the session changed: the whole picture first. */
  private async sendSnapshot(): Promise<void> {
    const session = this.session;
    if (!session || session.state !== 'running') {
      this.post({ type: 'status', status: 'down', detail: session ? `the server is ${session.state}` : 'no server runs' });
      return;
    }
    try {
      const snapshot = await session.request({ type: 'status' });
      if (session !== this.session) return;
      this.attachedToLive = true;
      this.post({ type: 'event', event: { type: 'snapshot', snapshot } });
      this.post({ type: 'status', status: 'live' });
      if (this.focus) this.post({ type: 'focus', ...this.focus });
    } catch (error) {
      this.post({ type: 'status', status: 'down', detail: error instanceof Error ? error.message : String(error) });
    }
  }

  private async onMessage(message: PageMessage): Promise<void> {
    if (message?.type === 'ready') {
      this.pageReady = true;
      await this.sendSnapshot();
      return;
    }
    if (message?.type !== 'command' || typeof message.id !== 'number') return;
    const session = this.session;
    try {
      if (!session) throw new Error('no server runs for this workspace');
      const result = await session.request(message.command);
      this.post({ type: 'event', event: { type: 'reply', id: message.id, ok: true, result } });
    } catch (error) {
      const e = error as { code?: string; message?: string; hint?: string };
      this.post({ type: 'event', event: { type: 'reply', id: message.id, ok: false, error: { code: e.code ?? 'CONTROL_COMMAND_FAILED', message: e.message ?? String(error), ...(e.hint ? { hint: e.hint } : {}) } } });
    }
  }

  private post(message: unknown): void {
    void this.panel.webview.postMessage(message);
  }

  dispose(): void {
    if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    for (const s of this.sessionSubscriptions.splice(0)) s.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}
