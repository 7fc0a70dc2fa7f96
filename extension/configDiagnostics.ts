// Diagnostics on servestack.json from the shared config module (the same checks and
// messages as `servestack check`, plus the warnings of `servestack export` once the
// config has no errors), as the user types (debounced) and for files on disk
// that are not open. Each diagnostic carries its code; the config's own diagnostic (with
// the data quick fixes use) is kept beside it.
import * as path from 'node:path';
import * as vscode from 'vscode';
import * as jsonc from 'jsonc-parser';
import { parseConfigText } from '../server/config';
import { exportDiagnostics } from '../server/export/diagnostics';
import type { Diagnostic as ConfigDiagnostic } from '../server/config/types';
import { CONFIG_FILE_NAME } from './configFile';

const DEBOUNCE_MS = 250;
/** Codes whose answer depends on files in the folder rather than on the config's text. */
const FOLDER_CODES: ReadonlySet<string> = new Set(['CONFIG_STATIC_MISSING', 'CONFIG_APP_MODULE_MISSING', 'CONFIG_PATH_MISSING', 'CONFIG_APP_FORMAT']);
export const DIAGNOSTIC_SOURCE = 'servestack';

export interface Checked {
  diagnostic: vscode.Diagnostic;
  config: ConfigDiagnostic;
}

export class ConfigDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection(DIAGNOSTIC_SOURCE);
  private readonly checked = new Map<string, Checked[]>();
  private readonly serveFailures = new Map<string, { code: 'PORT_IN_USE'; message: string; listen: string }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly disposables: vscode.Disposable[] = [this.collection];
  private readonly changeEmitter = new vscode.EventEmitter<vscode.Uri>();
  /** Diagnostics of a file were recomputed. */
  readonly onDidCheck = this.changeEmitter.event;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher(`**/${CONFIG_FILE_NAME}`);
    const folderWatcher = vscode.workspace.createFileSystemWatcher('**/*', false, true, false);
    this.disposables.push(
      this.changeEmitter,
      watcher,
      vscode.workspace.onDidOpenTextDocument((d) => { if (isConfig(d.uri)) this.check(d.uri, d.getText()); }),
      vscode.workspace.onDidChangeTextDocument((e) => { if (isConfig(e.document.uri)) this.schedule(e.document); }),
      // Closing drops unsaved text: what counts again is the file on disk.
      vscode.workspace.onDidCloseTextDocument((d) => { if (isConfig(d.uri)) void this.checkOnDisk(d.uri); }),
      watcher.onDidCreate((uri) => void this.checkOnDisk(uri)),
      watcher.onDidChange((uri) => { if (!this.openDocument(uri)) void this.checkOnDisk(uri); }),
      watcher.onDidDelete((uri) => this.clear(uri)),
      // Semantic checks look at the folder (static folders, modules, files): re-check when a
      // file or folder appears or goes, from the editor or outside it, while one is reported.
      folderWatcher,
      folderWatcher.onDidCreate(() => this.recheckIfFolderMatters()),
      folderWatcher.onDidDelete(() => this.recheckIfFolderMatters()),
    );
    for (const document of vscode.workspace.textDocuments) if (isConfig(document.uri)) this.check(document.uri, document.getText());
    void this.checkWorkspace();
  }

  /** servestack.json at the top of each folder (and a few below), open or not. */
  private async checkWorkspace(): Promise<void> {
    const files = await vscode.workspace.findFiles(`**/${CONFIG_FILE_NAME}`, '{**/node_modules/**,**/.venv/**,**/venv/**,**/.git/**}', 50);
    for (const uri of files) if (!this.openDocument(uri)) await this.checkOnDisk(uri);
  }

  private recheckTimer?: NodeJS.Timeout;
  private recheckIfFolderMatters(): void {
    const matters = [...this.checked.values()].some((list) => list.some((c) => FOLDER_CODES.has(c.config.code)));
    if (!matters) return;
    clearTimeout(this.recheckTimer);
    this.recheckTimer = setTimeout(() => this.recheckAll(), DEBOUNCE_MS);
  }

  recheckAll(): void {
    for (const key of this.checked.keys()) {
      const uri = vscode.Uri.parse(key);
      const document = this.openDocument(uri);
      if (document) this.schedule(document);
      else void this.checkOnDisk(uri);
    }
  }

  private openDocument(uri: vscode.Uri): vscode.TextDocument | undefined {
    return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  }

  private schedule(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      if (!document.isClosed) this.check(document.uri, document.getText());
    }, DEBOUNCE_MS));
  }

  private async checkOnDisk(uri: vscode.Uri): Promise<void> {
    let text: string;
    try {
      text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      this.clear(uri); // deleted between the event and the read
      return;
    }
    this.check(uri, text);
  }

  /**
   * A problem the running server found in the config (the port of "listen" is taken): shown
   * on the "listen" value until that value changes, so its quick fix can take a free port.
   */
  addServeFailure(uri: vscode.Uri, code: 'PORT_IN_USE', message: string): void {
    const document = this.openDocument(uri);
    void (document ? Promise.resolve(document.getText()) : vscode.workspace.fs.readFile(uri).then((b) => new TextDecoder().decode(b), () => undefined))
      .then((text) => {
        if (text === undefined) return;
        const listen = listenValue(text);
        if (listen === undefined) return; // not pinned in the file: nothing to point at
        this.serveFailures.set(uri.toString(), { code, message, listen });
        this.check(uri, text);
      });
  }

  /** Check a text now (tests call this to skip the debounce). */
  check(uri: vscode.Uri, text: string): Checked[] {
    const file = uri.fsPath;
    const { diagnostics, config } = parseConfigText(text, file, path.dirname(file));
    // What production would do differently (servestack export's warnings), once the config is sound.
    if (config && !diagnostics.some((d) => d.severity === 'error')) diagnostics.push(...exportDiagnostics(text, file, config));
    const failure = this.serveFailures.get(uri.toString());
    if (failure) {
      const node = listenNode(text);
      if (!node || JSON.stringify(jsonc.getNodeValue(node)) !== failure.listen) this.serveFailures.delete(uri.toString());
      else diagnostics.push(runtimeDiagnostic(file, text, node, failure.code, failure.message));
    }
    const checked = diagnostics.filter((d) => d.file === file || !d.file).map((config) => ({ config, diagnostic: toVscode(config) }));
    this.checked.set(uri.toString(), checked);
    this.collection.set(uri, checked.map((c) => c.diagnostic));
    this.changeEmitter.fire(uri);
    return checked;
  }

  /** The config diagnostics behind the editor's ones in a range (matched by code and range). */
  find(uri: vscode.Uri, diagnostics: readonly vscode.Diagnostic[]): Checked[] {
    const all = this.checked.get(uri.toString()) ?? [];
    return all.filter((c) => diagnostics.some((d) => codeOf(d) === c.config.code && d.range.isEqual(c.diagnostic.range)));
  }

  all(uri: vscode.Uri): Checked[] {
    return this.checked.get(uri.toString()) ?? [];
  }

  private clear(uri: vscode.Uri): void {
    this.checked.delete(uri.toString());
    this.collection.delete(uri);
  }

  dispose(): void {
    clearTimeout(this.recheckTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

export function isConfig(uri: vscode.Uri): boolean {
  return uri.scheme === 'file' && path.basename(uri.fsPath) === CONFIG_FILE_NAME;
}

export function codeOf(diagnostic: vscode.Diagnostic): string | undefined {
  const code = diagnostic.code;
  if (code === undefined) return undefined;
  return typeof code === 'object' ? String(code.value) : String(code);
}

function toVscode(d: ConfigDiagnostic): vscode.Diagnostic {
  const range = new vscode.Range(d.line - 1, d.col - 1, Math.max(d.endLine, d.line) - 1, d.endLine > d.line || d.endCol > d.col ? d.endCol - 1 : d.col - 1);
  const severity = d.severity === 'error' ? vscode.DiagnosticSeverity.Error
    : d.severity === 'warning' ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Information;
  const diagnostic = new vscode.Diagnostic(range, d.message, severity);
  diagnostic.code = d.code;
  diagnostic.source = DIAGNOSTIC_SOURCE;
  if (d.code === 'CONFIG_POOL_UNUSED' || d.code === 'CONFIG_UNKNOWN_FIELD') diagnostic.tags = [vscode.DiagnosticTag.Unnecessary];
  return diagnostic;
}

function listenNode(text: string): jsonc.Node | undefined {
  const root = jsonc.parseTree(text, [], { allowTrailingComma: true });
  return root && jsonc.findNodeAtLocation(root, ['listen']);
}

function listenValue(text: string): string | undefined {
  const node = listenNode(text);
  return node ? JSON.stringify(jsonc.getNodeValue(node)) : undefined;
}

function runtimeDiagnostic(file: string, text: string, node: jsonc.Node, code: 'PORT_IN_USE', message: string): ConfigDiagnostic {
  const at = (offset: number) => {
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    return { line, col: offset - (before.lastIndexOf('\n') + 1) + 1 };
  };
  const start = at(node.offset);
  const end = at(node.offset + node.length);
  return {
    file, line: start.line, col: start.col, endLine: end.line, endCol: end.col, offset: node.offset, length: node.length,
    severity: 'error', code, message: message.split('\n', 1)[0],
  };
}
