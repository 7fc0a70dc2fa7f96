// Quick fixes on servestack.json, one per diagnostic code with an obvious fix. Each selects
// on the diagnostic's code and uses the data the config module attached to it. Text edits
// are jsonc-parser edits (comments and formatting kept) in an undoable WorkspaceEdit.
import * as net from 'node:net';
import * as path from 'node:path';
import * as vscode from 'vscode';
import * as jsonc from 'jsonc-parser';
import { parseListen } from '../server/config';
import type { ConfigDiagnostics, Checked } from './configDiagnostics';
import { modifyEdit } from './configFile';

export class ConfigActions implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  constructor(private readonly diagnostics: ConfigDiagnostics) {}

  async provideCodeActions(document: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): Promise<vscode.CodeAction[]> {
    const actions: vscode.CodeAction[] = [];
    for (const checked of this.diagnostics.find(document.uri, context.diagnostics)) {
      actions.push(...(await this.fixesFor(document, checked)));
    }
    return actions;
  }

  private async fixesFor(document: vscode.TextDocument, { config, diagnostic }: Checked): Promise<vscode.CodeAction[]> {
    const text = document.getText();
    const uri = document.uri;
    const data = config.data ?? {};
    const fix = (title: string, edit?: vscode.WorkspaceEdit, preferred = false): vscode.CodeAction => {
      const action = new vscode.CodeAction(title, vscode.CodeActionKind.QuickFix);
      action.diagnostics = [diagnostic];
      action.isPreferred = preferred;
      if (edit) action.edit = edit;
      return action;
    };
    const valuePath = jsonc.getLocation(text, config.offset + 1).path;

    switch (config.code) {
      case 'CONFIG_STATIC_MISSING': {
        const folder = typeof data.folder === 'string' ? data.folder : undefined;
        if (!folder) return [];
        const action = fix(`Create the folder '${relativeTo(document, folder)}'`, undefined, true);
        action.command = { command: 'servestack.createFolder', title: 'Create Folder', arguments: [vscode.Uri.file(folder)] };
        return [action];
      }
      case 'CONFIG_POOL_MISSING': {
        const pools = Array.isArray(data.pools) ? (data.pools as string[]) : [];
        const suggestion = typeof data.suggestion === 'string' ? data.suggestion : undefined;
        const ordered = suggestion ? [suggestion, ...pools.filter((p) => p !== suggestion)] : pools;
        return ordered.map((pool, i) => fix(`Use the pool '${pool}'`, replaceValue(uri, document, diagnostic.range, JSON.stringify(pool)), i === 0 && pools.length === 1 || pool === suggestion));
      }
      case 'CONFIG_DUPLICATE_ROUTE': {
        const index = valuePath[0] === 'routes' && typeof valuePath[1] === 'number' ? valuePath[1] : undefined;
        if (index === undefined) return [];
        const first = typeof data.firstIndex === 'number' ? ` (routes[${data.firstIndex}] has the same path)` : '';
        return [fix(`Remove this duplicate route${first}`, modifyEdit(uri, text, ['routes', index], undefined), true)];
      }
      case 'CONFIG_APP_FORMAT':
      case 'CONFIG_APP_MODULE_MISSING': {
        const candidates = Array.isArray(data.candidates) ? (data.candidates as string[]) : [];
        return candidates.slice(0, 5).map((target, i) =>
          fix(`Use the app ServeStack found: '${target}'`, replaceValue(uri, document, diagnostic.range, JSON.stringify(target)), i === 0));
      }
      case 'CONFIG_BAD_PORT':
      case 'PORT_IN_USE': {
        const current = jsonc.getNodeValue(jsonc.findNodeAtLocation(jsonc.parseTree(text) ?? emptyNode, ['listen']) ?? emptyNode);
        const parsed = typeof current === 'string' || typeof current === 'number' ? parseListen(current) : undefined;
        const host = parsed && parsed.error === undefined && parsed.value.host ? parsed.value.host : '127.0.0.1';
        const from = parsed && parsed.error === undefined && parsed.value.port ? parsed.value.port + 1 : 8080;
        const port = await freePort(host, from);
        if (port === undefined) return [];
        return [fix(`Listen on the free port ${port} (${host}:${port})`, modifyEdit(uri, text, ['listen'], `${host}:${port}`), true)];
      }
      default:
        return [];
    }
  }
}

const emptyNode: jsonc.Node = { type: 'null', offset: 0, length: 0 };

function replaceValue(uri: vscode.Uri, document: vscode.TextDocument, range: vscode.Range, value: string): vscode.WorkspaceEdit {
  const edit = new vscode.WorkspaceEdit();
  // The diagnostic spans the value; widen an empty span to the JSON value under it.
  let target = range;
  if (range.isEmpty) {
    const root = jsonc.parseTree(document.getText());
    const node = root && jsonc.findNodeAtOffset(root, document.offsetAt(range.start));
    if (node) target = new vscode.Range(document.positionAt(node.offset), document.positionAt(node.offset + node.length));
  }
  edit.replace(uri, target, value);
  return edit;
}

function relativeTo(document: vscode.TextDocument, folder: string): string {
  const relative = path.relative(path.dirname(document.uri.fsPath), folder);
  return relative && !relative.startsWith('..') ? relative.split(path.sep).join('/') : folder;
}

/** The first port from `from` on (at most 100 tried) that can be listened on now. */
export async function freePort(host: string, from: number): Promise<number | undefined> {
  for (let port = Math.max(1024, from); port < Math.min(65536, from + 100); port++) {
    if (await canListen(host, port)) return port;
  }
  return undefined;
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
