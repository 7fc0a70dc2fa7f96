import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { api, codeActions, file, setText, until } from './helpers';

const BROKEN = `// A config with one mistake of each kind that has a quick fix.
{
  "listen": "127.0.0.1:99999",
  "pools": {
    "web": { "app": "app:app", "workers": 2, "reload": false }
  },
  "routes": [
    { "path": "/files/", "static": "missing-folder" },
    { "path": "/api/", "pool": "wbe" },
    { "path": "/", "pool": "web" },
    { "path": "/", "pool": "web" }
  ]
}
`;

function codes(uri: vscode.Uri): string[] {
  return vscode.languages.getDiagnostics(uri).map((d) => String(typeof d.code === 'object' ? d.code.value : d.code)).sort();
}

function diagnostic(uri: vscode.Uri, code: string): vscode.Diagnostic {
  const d = vscode.languages.getDiagnostics(uri).find((x) => (typeof x.code === 'object' ? x.code.value : x.code) === code);
  assert.ok(d, `a ${code} diagnostic`);
  return d;
}

async function applyFix(uri: vscode.Uri, code: string, title: string | RegExp): Promise<void> {
  const actions = await codeActions(uri, diagnostic(uri, code).range);
  const action = actions.find((a) => (typeof title === 'string' ? a.title === title : title.test(a.title)));
  assert.ok(action, `a quick fix "${title}" among ${JSON.stringify(actions.map((a) => a.title))}`);
  assert.equal(action.kind?.value, vscode.CodeActionKind.QuickFix.value);
  if (action.edit) assert.ok(await vscode.workspace.applyEdit(action.edit));
  if (action.command) await vscode.commands.executeCommand(action.command.command, ...(action.command.arguments ?? []));
}

describe('diagnostics on servestack.json', () => {
  const uri = file('servestack.json');
  let original: string;
  let document: vscode.TextDocument;

  before(async () => {
    await api();
    document = await vscode.workspace.openTextDocument(uri);
    original = document.getText();
    await vscode.window.showTextDocument(document);
  });

  after(async () => {
    await setText(document, original);
    await document.save();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('is JSONC with the schema: hover docs on a field', async () => {
    assert.equal(document.languageId, 'jsonc');
    const line = document.getText().split('\n').findIndex((l) => l.includes('"workers"'));
    const column = document.lineAt(line).text.indexOf('"workers"') + 2;
    const text = await until('hover text from the schema', async () => {
      const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, new vscode.Position(line, column));
      const joined = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
      return joined.trim() ? joined : undefined;
    }, 15_000);
    assert.match(text, /How many worker processes to run/);
  });

  it('has none for the valid config', async () => {
    await until('no diagnostics', () => codes(uri).length === 0);
  });

  it('reports each mistake with its code as the user types', async () => {
    await setText(document, BROKEN);
    await until('four diagnostics', () => codes(uri).length === 4, 5000);
    assert.deepEqual(codes(uri), ['CONFIG_BAD_PORT', 'CONFIG_DUPLICATE_ROUTE', 'CONFIG_POOL_MISSING', 'CONFIG_STATIC_MISSING']);
    const pool = diagnostic(uri, 'CONFIG_POOL_MISSING');
    assert.equal(pool.source, 'servestack');
    assert.equal(pool.severity, vscode.DiagnosticSeverity.Error);
    assert.match(pool.message, /no pool is named "wbe"/);
    assert.equal(document.getText(pool.range), '"wbe"');
  });

  it('quick fix: pick an existing pool', async () => {
    await applyFix(uri, 'CONFIG_POOL_MISSING', "Use the pool 'web'");
    assert.match(document.getText(), /\{ "path": "\/api\/", "pool": "web" \}/);
    await until('the pool diagnostic to go', () => !codes(uri).includes('CONFIG_POOL_MISSING'), 5000);
  });

  it('quick fix: drop a duplicate route, keeping the comment', async () => {
    await applyFix(uri, 'CONFIG_DUPLICATE_ROUTE', /^Remove this duplicate route/);
    const text = document.getText();
    assert.equal(text.match(/"path": "\/"/g)?.length, 1);
    assert.ok(text.startsWith('// A config with one mistake'), 'the comment stays');
    await until('the duplicate diagnostic to go', () => !codes(uri).includes('CONFIG_DUPLICATE_ROUTE'), 5000);
  });

  it('quick fix: take a free port', async () => {
    await applyFix(uri, 'CONFIG_BAD_PORT', /^Listen on the free port \d+/);
    assert.match(document.getText(), /"listen": "127\.0\.0\.1:\d+"/);
    await until('the port diagnostic to go', () => !codes(uri).includes('CONFIG_BAD_PORT'), 5000);
  });

  it('quick fix: create the missing static folder', async () => {
    await applyFix(uri, 'CONFIG_STATIC_MISSING', "Create the folder 'missing-folder'");
    assert.ok(existsSync(file('missing-folder').fsPath));
    await until('no diagnostics left', () => codes(uri).length === 0, 5000);
    await vscode.workspace.fs.delete(file('missing-folder'), { recursive: true });
  });

  it('quick fix: point the app at a detected callable', async () => {
    await setText(document, original.replace('"app:app"', '"application:app"'));
    await until('the module diagnostic', () => codes(uri).includes('CONFIG_APP_MODULE_MISSING'), 5000);
    const d = diagnostic(uri, 'CONFIG_APP_MODULE_MISSING');
    assert.equal(d.severity, vscode.DiagnosticSeverity.Warning);
    const titles = (await codeActions(uri, d.range)).map((a) => a.title);
    assert.ok(titles.some((t) => /^Use the app ServeStack found: '/.test(t)), JSON.stringify(titles));
  });

  it('warns, with their own codes, about what production would do differently (servestack export)', async () => {
    await setText(document, original.replace('"reload": false', '"reload": true, "env": { "FLASK_DEBUG": "1" }'));
    await until('the export warnings', () => codes(uri).includes('EXPORT_RELOAD'), 5000);
    assert.deepEqual(codes(uri), ['EXPORT_DEBUG', 'EXPORT_RELOAD']);
    const reload = diagnostic(uri, 'EXPORT_RELOAD');
    assert.equal(reload.severity, vscode.DiagnosticSeverity.Warning);
    assert.equal(document.getText(reload.range), '"reload"');
    assert.match(reload.message, /pools\.web\.reload: production does not restart on file saves/);
    assert.equal(document.getText(diagnostic(uri, 'EXPORT_DEBUG').range), '"FLASK_DEBUG"');
    await setText(document, original);
    await until('no diagnostics again', () => codes(uri).length === 0, 5000);
  });
});
