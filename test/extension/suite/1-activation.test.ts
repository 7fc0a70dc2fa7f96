import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { api, EXTENSION_ID, file, until } from './helpers';

describe('activation', () => {
  it('activates in a folder with servestack.json and gives its API', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension);
    // workspaceContains:servestack.json activates it without any command.
    const a = await api();
    assert.ok(extension.isActive);
    assert.ok(a.supervisor && a.workersTree && a.routesTree && a.statusBar);
  });

  it('registers every contributed command', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID)!;
    const manifest = JSON.parse(readFileSync(path.join(extension.extensionPath, 'package.json'), 'utf8'));
    const contributed: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((id) => !registered.has(id));
    assert.deepEqual(missing, []);
    for (const id of ['servestack.serve', 'servestack.stop', 'servestack.reloadWorkers', 'servestack.scaleWorkers',
      'servestack.openInBrowser', 'servestack.showLogs', 'servestack.createConfig', 'servestack.exportForProduction']) {
      assert.ok(contributed.includes(id), `${id} is contributed`);
    }
  });

  it('offers Serve in the status bar when nothing runs', async () => {
    const a = await api();
    assert.equal(a.supervisor.activeSessions().length, 0);
    await until('the Serve item', () => a.statusBar.item.text === '$(play) Serve');
    assert.equal(a.statusBar.item.command, 'servestack.serve');
  });

  it('lists the routes of servestack.json before anything runs', async () => {
    const a = await api();
    const routes = await until('routes', async () => {
      const nodes = await a.routesTree.getChildren();
      return nodes.length === 2 ? nodes : undefined;
    });
    const items = routes.map((n) => a.routesTree.getTreeItem(n));
    assert.deepEqual(items.map((i) => `${i.label} ${i.description}`), ['/static/ static static', '/ pool web']);
    assert.equal(items[1].command?.command, 'servestack.revealRoute');
  });

  it('reveals a route in servestack.json', async () => {
    const a = await api();
    const [, root] = await a.routesTree.getChildren();
    await vscode.commands.executeCommand('servestack.revealRoute', root);
    const editor = vscode.window.activeTextEditor;
    assert.ok(editor);
    assert.equal(editor.document.uri.toString(), file('servestack.json').toString());
    assert.equal(editor.document.getText(editor.selection), '{ "path": "/", "pool": "web" }');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});
