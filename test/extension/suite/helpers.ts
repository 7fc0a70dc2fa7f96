// Shared by the suite's test files: the extension's API, the workspace, and polling.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { ServeStackApi } from '../../../extension/extension';

export const EXTENSION_ID = 'servestack.servestack';

export async function api(): Promise<ServeStackApi> {
  const extension = vscode.extensions.getExtension<ServeStackApi>(EXTENSION_ID);
  assert.ok(extension, `extension ${EXTENSION_ID} is installed`);
  return extension.isActive ? extension.exports : extension.activate();
}

export function folder(): vscode.WorkspaceFolder {
  const folders = vscode.workspace.workspaceFolders;
  assert.ok(folders?.length, 'the suite runs with a workspace folder open');
  return folders[0];
}

export function file(name: string): vscode.Uri {
  return vscode.Uri.joinPath(folder().uri, name);
}

/** Polls until `check` returns a truthy value (or throws its last error after `timeoutMs`). */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Replace a document's whole text through a WorkspaceEdit (as typing would, but at once). */
export async function setText(document: vscode.TextDocument, text: string): Promise<void> {
  const edit = new vscode.WorkspaceEdit();
  edit.replace(document.uri, new vscode.Range(0, 0, document.lineCount, 0), text);
  assert.ok(await vscode.workspace.applyEdit(edit), 'the edit applies');
}

export async function codeActions(uri: vscode.Uri, range: vscode.Range): Promise<vscode.CodeAction[]> {
  await vscode.workspace.openTextDocument(uri); // the provider command needs the document loaded
  return (await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, range)) ?? [];
}

/** The ServeStack log's last lines (shows the channel to load it): printed when a test fails. */
export async function logTail(lines = 60): Promise<string> {
  await vscode.commands.executeCommand('servestack.showLogs');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const document = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'output' && /ServeStack/i.test(d.uri.path + d.getText().slice(0, 2000)));
    if (document) return document.getText().split('\n').slice(-lines).join('\n');
    await new Promise((r) => setTimeout(r, 100));
  }
  return '(the ServeStack log could not be read)';
}
