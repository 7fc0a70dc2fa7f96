import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createServer, type Server } from 'node:net';
import * as vscode from 'vscode';
import { CRASH_BUDGET, recordCrash } from '../../../extension/supervisor';
import { api, codeActions, file, folder, until } from './helpers';

/** Write a file through the workspace API (the editor sees it at once). */
async function write(name: string, text: string): Promise<void> {
  await vscode.workspace.fs.writeFile(file(name), new TextEncoder().encode(text));
}

describe('failures reach the user', function () {
  this.timeout(60_000);
  let original: string;

  before(async () => {
    await api();
    original = new TextDecoder().decode(await vscode.workspace.fs.readFile(file('servestack.json')));
  });

  afterEach(async () => {
    await (await api()).supervisor.stopAll();
    await write('servestack.json', original);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('a port in use: the diagnostic on "listen" offers a free port', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await write('servestack.json', original.replace('{\n  "pools"', `{\n  "listen": "127.0.0.1:${port}",\n  "pools"`));
      const url = await vscode.commands.executeCommand('servestack.serve', folder());
      assert.equal(url, undefined, 'nothing served');
      const uri = file('servestack.json');
      const diagnostic = await until('PORT_IN_USE on listen', () =>
        vscode.languages.getDiagnostics(uri).find((d) => d.code === 'PORT_IN_USE'), 10_000);
      assert.match(diagnostic.message, new RegExp(`port ${port}`));
      const titles = (await codeActions(uri, diagnostic.range)).map((a) => a.title);
      assert.ok(titles.some((t) => /^Listen on the free port \d+/.test(t)), JSON.stringify(titles));
    } finally {
      blocker.close();
    }
  });

  it('an app that cannot load: the pool shows why, the status bar says so', async () => {
    const a = await api();
    await write('broken.py', 'import os\n\nraise RuntimeError("broken on purpose")\napp = None\n');
    await write('servestack.json', original.replace('"app:app"', '"broken:app"'));
    await vscode.commands.executeCommand('servestack.serve', folder());
    const session = a.supervisor.activeSessions()[0];
    assert.ok(session);
    await until('the pool to report the failure', () => session.pythonPools()[0]?.failure, 30_000);
    const [pool] = a.workersTree.getChildren();
    const children = a.workersTree.getChildren(pool).map((n) => a.workersTree.getTreeItem(n));
    assert.ok(children.some((i) => /broken on purpose|RuntimeError/.test(String(i.label))), JSON.stringify(children.map((i) => i.label)));
    await until('the status bar', () => a.statusBar.item.text.includes('web: app failed'));
  });

  it("the log keeps the traceback, and its File \"…\", line N opens the file at the line", async () => {
    await vscode.commands.executeCommand('servestack.showLogs');
    const output = await until('the ServeStack log document', () => vscode.workspace.textDocuments.find((d) =>
      d.uri.scheme === 'output' && d.getText().includes('broken on purpose')), 15_000);
    const text = output.getText();
    assert.match(text, /File "[^"]*broken\.py", line 3/);
    const links = await vscode.commands.executeCommand<vscode.DocumentLink[]>('vscode.executeLinkProvider', output.uri);
    const link = links.find((l) => l.target?.path.endsWith('/broken.py'));
    assert.ok(link, `a link to broken.py among ${JSON.stringify(links.map((l) => l.target?.toString()))}`);
    assert.equal(link.target?.fragment, 'L3');
    await vscode.workspace.fs.delete(file('broken.py'));
  });

  it('Export for Production writes the files and opens nginx.conf', async () => {
    const out = file('deploy');
    const result = await vscode.commands.executeCommand<string>('servestack.exportForProduction', folder(), out.fsPath);
    assert.equal(result, out.fsPath);
    for (const name of ['nginx.conf', 'gunicorn.conf.py', 'mime.types', 'README.md', 'systemd/servestack-nginx.service', 'systemd/servestack-gunicorn-web.service']) {
      assert.ok(existsSync(path.join(out.fsPath, name)), `${name} is written`);
    }
    const editor = await until('nginx.conf in the editor', () => {
      const e = vscode.window.activeTextEditor;
      return e && e.document.uri.fsPath === path.join(out.fsPath, 'nginx.conf') ? e : undefined;
    }, 10_000);
    const text = editor.document.getText();
    assert.match(text, /upstream web \{/);
    assert.match(text, /location \/static\/ \{/);
    assert.match(readFileSync(path.join(out.fsPath, 'gunicorn.conf.py'), 'utf8'), /^wsgi_app = "app:app"/m);
    await vscode.workspace.fs.delete(out, { recursive: true });
  });
});

describe('the crash budget', () => {
  it('stops offering restarts at the 5th crash within 3 minutes, and forgets older ones', async () => {
    assert.deepEqual(CRASH_BUDGET, { crashes: 5, windowMs: 180_000 });
    let history: number[] = [];
    const t0 = 1_000_000;
    for (let i = 0; i < 4; i++) {
      const r = recordCrash(history, t0 + i * 10_000);
      assert.equal(r.exhausted, false, `crash ${i + 1}`);
      history = r.recent;
    }
    assert.equal(recordCrash(history, t0 + 40_000).exhausted, true, 'the 5th within the window');
    const later = recordCrash(history, t0 + 185_000);
    assert.equal(later.exhausted, false, 'the first crash fell out of the window');
    assert.equal(later.recent.length, 4);
  });
});
