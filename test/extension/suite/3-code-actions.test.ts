import * as assert from 'node:assert/strict';
import * as jsonc from 'jsonc-parser';
import * as vscode from 'vscode';
import { api, codeActions, file, setText, until } from './helpers';

async function actionsOnLine(uri: vscode.Uri, pattern: RegExp): Promise<vscode.CodeAction[]> {
  const document = await vscode.workspace.openTextDocument(uri);
  const line = document.getText().split('\n').findIndex((l) => pattern.test(l));
  assert.ok(line >= 0, `a line matching ${pattern}`);
  return codeActions(uri, new vscode.Range(line, 2, line, 2));
}

async function apply(action: vscode.CodeAction | undefined): Promise<void> {
  assert.ok(action?.edit, 'an action with an edit');
  assert.ok(await vscode.workspace.applyEdit(action.edit));
  if (action.command) await vscode.commands.executeCommand(action.command.command, ...(action.command.arguments ?? []));
}

describe('code actions in Python files', () => {
  const config = file('servestack.json');
  const views = file('views.py');
  let original: string;

  before(async () => {
    await api();
    original = (await vscode.workspace.openTextDocument(config)).getText();
  });

  afterEach(async () => {
    // Put the config back as it was (on disk and in the open document).
    const edit = new vscode.WorkspaceEdit();
    edit.createFile(config, { overwrite: true, contents: new TextEncoder().encode(original) });
    await vscode.workspace.applyEdit(edit);
    const document = await vscode.workspace.openTextDocument(config);
    if (document.getText() !== original) await setText(document, original);
    await document.save();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it("adds a route for a Flask blueprint's @bp.route, keeping comments", async () => {
    const actions = await actionsOnLine(views, /@bp\.route/);
    const action = actions.find((a) => a.title === "Add a ServeStack route for '/reports/'");
    assert.ok(action, JSON.stringify(actions.map((a) => a.title)));
    await apply(action);
    const text = (await vscode.workspace.openTextDocument(config)).getText();
    assert.ok(text.startsWith('// The extension suite'), 'the comment stays');
    const routes = jsonc.parse(text).routes as { path: string; pool?: string }[];
    assert.deepEqual(routes[routes.length - 1], { path: '/reports/', pool: 'web' });
  });

  it("adds a route for FastAPI-style @app.get", async () => {
    const titles = (await actionsOnLine(views, /@site\.get/)).map((a) => a.title);
    assert.ok(titles.includes("Add a ServeStack route for '/health'"), JSON.stringify(titles));
  });

  it('offers no route that servestack.json already has', async () => {
    const document = await vscode.workspace.openTextDocument(views);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(views, new vscode.Position(document.lineCount, 0), '\n@site.route("/static/")\ndef s():\n    return ""\n');
    await vscode.workspace.applyEdit(edit);
    const titles = (await actionsOnLine(views, /@site\.route\("\/static\/"\)/)).map((a) => a.title);
    assert.ok(!titles.some((t) => t.startsWith('Add a ServeStack route')), JSON.stringify(titles));
    await vscode.commands.executeCommand('workbench.action.files.revert', views);
  });

  it("serves Flask's static_folder from the proxy", async () => {
    const actions = await actionsOnLine(views, /Flask\(__name__/);
    const action = actions.find((a) => a.title.startsWith('Serve this static folder from the proxy'));
    assert.ok(action, JSON.stringify(actions.map((a) => a.title)));
    await apply(action);
    const routes = jsonc.parse((await vscode.workspace.openTextDocument(config)).getText()).routes;
    assert.deepEqual(routes[0], { path: '/assets/', static: 'assets' });
  });

  it('creates servestack.json for an app object in a folder without one', async () => {
    await vscode.workspace.fs.delete(config);
    await until('the config to be gone', async () => !(await vscode.workspace.findFiles('servestack.json')).length);
    const actions = await actionsOnLine(views, /^site = Flask/);
    const action = actions.find((a) => a.title === 'Create servestack.json for this app (views:site)');
    assert.ok(action, JSON.stringify(actions.map((a) => a.title)));
    await apply(action);
    const created = jsonc.parse((await vscode.workspace.openTextDocument(config)).getText());
    assert.equal(created.pools.web.app, 'views:site');
  });
});
