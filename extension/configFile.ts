// servestack.json as the editor sees it: where it is, its text (the open document's,
// unsaved changes included, else the file's), the routes it declares, and edits that keep
// its comments and formatting (jsonc-parser `modify`, applied as an undoable WorkspaceEdit).
import * as vscode from 'vscode';
import * as jsonc from 'jsonc-parser';
import type { RouteInfo } from '../server/protocol';

export const CONFIG_FILE_NAME = 'servestack.json';

export function configUri(folder: vscode.WorkspaceFolder): vscode.Uri {
  return vscode.Uri.joinPath(folder.uri, CONFIG_FILE_NAME);
}

export async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false; // stat throws FileNotFound: that is the answer
  }
}

/** The text of a file: the open document's when there is one, else from disk; undefined when missing. */
export async function readText(uri: vscode.Uri): Promise<string | undefined> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open?.isDirty) return open.getText();
  // A document stays open (in memory) after its file is deleted: the disk decides.
  if (open) return (await exists(uri)) ? open.getText() : undefined;
  try {
    return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch {
    return undefined; // a missing file has no text
  }
}

/** The routes a config text declares, in file order (what the server would report). */
export function routesInText(text: string): RouteInfo[] {
  const root = jsonc.parseTree(text, [], { allowTrailingComma: true });
  const routes = root && jsonc.findNodeAtLocation(root, ['routes']);
  if (!routes || routes.type !== 'array') return [];
  const result: RouteInfo[] = [];
  (routes.children ?? []).forEach((node, index) => {
    const value = jsonc.getNodeValue(node) as Record<string, unknown> | undefined;
    if (!value || typeof value !== 'object' || typeof value.path !== 'string') return;
    if (typeof value.static === 'string') result.push({ path: value.path, kind: 'static', target: value.static, index });
    else if (typeof value.pool === 'string') result.push({ path: value.path, kind: 'pool', target: value.pool, index });
    else if (typeof value.proxy === 'string') result.push({ path: value.path, kind: 'proxy', target: value.proxy, index });
  });
  return result;
}

/** The range of `routes[index]` in a document, for reveal. */
export function routeRange(document: vscode.TextDocument, index: number): vscode.Range | undefined {
  const root = jsonc.parseTree(document.getText(), [], { allowTrailingComma: true });
  const node = root && jsonc.findNodeAtLocation(root, ['routes', index]);
  if (!node) return undefined;
  return new vscode.Range(document.positionAt(node.offset), document.positionAt(node.offset + node.length));
}

/** Formatting that matches the file: its indentation and line ends. */
export function formattingOf(text: string): jsonc.FormattingOptions {
  const indent = /^([ \t]+)\S/m.exec(text)?.[1] ?? '  ';
  return {
    insertSpaces: !indent.startsWith('\t'),
    tabSize: indent.startsWith('\t') ? 4 : indent.length,
    eol: text.includes('\r\n') ? '\r\n' : '\n',
  };
}

/** jsonc `modify` edits of a text, as a WorkspaceEdit on the file (undoable, comments kept). */
export function modifyEdit(
  uri: vscode.Uri,
  text: string,
  jsonPath: jsonc.JSONPath,
  value: unknown,
  options: { isArrayInsertion?: boolean; edit?: vscode.WorkspaceEdit } = {},
): vscode.WorkspaceEdit {
  const edit = options.edit ?? new vscode.WorkspaceEdit();
  const edits = jsonc.modify(text, jsonPath, value, { formattingOptions: formattingOf(text), isArrayInsertion: options.isArrayInsertion });
  const lines = lineStarts(text);
  for (const e of edits) {
    edit.replace(uri, new vscode.Range(positionAt(lines, e.offset), positionAt(lines, e.offset + e.length)), e.content);
  }
  return edit;
}

/** The text after a jsonc `modify` (for building several edits on one text). */
export function applyModify(text: string, jsonPath: jsonc.JSONPath, value: unknown, isArrayInsertion = false): string {
  return jsonc.applyEdits(text, jsonc.modify(text, jsonPath, value, { formattingOptions: formattingOf(text), isArrayInsertion }));
}

/** Replace the whole text of a file with a new one, as a single minimal edit. */
export function replaceAllEdit(uri: vscode.Uri, oldText: string, newText: string, edit = new vscode.WorkspaceEdit()): vscode.WorkspaceEdit {
  let start = 0;
  while (start < oldText.length && start < newText.length && oldText[start] === newText[start]) start++;
  let endOld = oldText.length;
  let endNew = newText.length;
  while (endOld > start && endNew > start && oldText[endOld - 1] === newText[endNew - 1]) { endOld--; endNew--; }
  const lines = lineStarts(oldText);
  edit.replace(uri, new vscode.Range(positionAt(lines, start), positionAt(lines, endOld)), newText.slice(start, endNew));
  return edit;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function positionAt(starts: number[], offset: number): vscode.Position {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid; else hi = mid - 1;
  }
  return new vscode.Position(lo, offset - starts[lo]);
}
