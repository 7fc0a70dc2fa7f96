// "Serve on My Network": opt-in, for this run only. A modal warning first (anyone on the
// network can open the app; the control channel stays on loopback behind its token), then
// the folder is served again with `--lan`, and a small panel shows the network URL with a
// QR code for a phone. Nothing is saved: the next Serve is loopback-only again.
import * as vscode from 'vscode';
import { qrDataUrl } from './qr';
import type { ServerSession, Supervisor } from './supervisor';

export const LAN_WARNING = 'Serve on your network?';
export const LAN_DETAIL =
  'Anyone on this network (the same Wi-Fi, a café, an office) can open the app while it runs, with whatever data it shows. ' +
  'The control channel (workers, reload, stop) stays on this machine only and needs its token. ' +
  'This lasts until the server stops; it is never saved.';
export const LAN_CONFIRM = 'Serve on My Network';

/** Ask, then serve `folder` on the network; resolves with the session (undefined when declined or failed). */
export async function serveOnNetwork(supervisor: Supervisor, folder: vscode.WorkspaceFolder, extensionUri: vscode.Uri, confirmed = false): Promise<ServerSession | undefined> {
  if (!confirmed) {
    const choice = await vscode.window.showWarningMessage(LAN_WARNING, { modal: true, detail: LAN_DETAIL }, LAN_CONFIRM);
    if (choice !== LAN_CONFIRM) return undefined;
  }
  const running = supervisor.sessionFor(folder);
  if (running?.isActive) await supervisor.stop(running);
  const session = await supervisor.serve(folder, { lan: true });
  if (session?.lanUrl) await LanPanel.show(extensionUri, folder.name, session.lanUrl);
  return session;
}

/** The panel with the network URL and its QR code; one at a time. */
export class LanPanel {
  static current: LanPanel | undefined;
  private constructor(private readonly panel: vscode.WebviewPanel, readonly url: string) {
    panel.onDidDispose(() => { if (LanPanel.current === this) LanPanel.current = undefined; });
  }

  static async show(extensionUri: vscode.Uri, name: string, url: string): Promise<LanPanel> {
    LanPanel.current?.panel.dispose();
    const panel = vscode.window.createWebviewPanel('servestack.lan', `ServeStack on your network: ${name}`, vscode.ViewColumn.Beside, {
      enableScripts: false,
      localResourceRoots: [extensionUri],
    });
    panel.webview.html = page(panel.webview, url, await qrDataUrl(url));
    LanPanel.current = new LanPanel(panel, url);
    return LanPanel.current;
  }

  dispose(): void { this.panel.dispose(); }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function page(webview: vscode.Webview, url: string, dataUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: ${webview.cspSource}; style-src 'unsafe-inline'">
<style>
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 1.5em; }
  img { width: 240px; height: 240px; background: #fff; padding: 8px; border-radius: 6px; }
  code { font-size: 1.2em; user-select: all; }
  .warn { color: var(--vscode-editorWarning-foreground); }
</style></head>
<body>
  <h2>Open on your phone</h2>
  <p><img id="qr" alt="QR code of ${escapeHtml(url)}" src="${dataUrl}"></p>
  <p><code id="url">${escapeHtml(url)}</code></p>
  <p class="warn">Anyone on this network can open the app until the server stops. The control channel stays on this machine.</p>
  <p>Scan it with the phone's camera on the same Wi-Fi. A firewall on this machine may need to allow the port.</p>
</body></html>`;
}
