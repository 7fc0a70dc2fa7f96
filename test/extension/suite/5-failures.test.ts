import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createServer, type Server } from 'node:net';
import * as vscode from 'vscode';
import type { ConfigApplyResult } from '../../../server/protocol';
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

  it('an edit of "listen" while serving is reported as needing a restart; Restart Server moves it', async () => {
    const a = await api();
    await vscode.commands.executeCommand('servestack.serve', folder());
    const session = a.supervisor.activeSessions()[0];
    assert.ok(session?.url);
    const oldUrl = session.url;
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    await new Promise<void>((resolve) => blocker.close(() => resolve())); // a port that was free a moment ago
    const results: ConfigApplyResult[] = [];
    const subscription = session.store.onEvent((event) => {
      if (event.type === 'config') results.push(event);
    });
    try {
      await write('servestack.json', original.replace('{\n  "pools"', `{\n  "listen": "127.0.0.1:${port}",\n  "pools"`));
      const result = await until('the config event', () => results.find((r) => r.restartNeeded?.length), 15_000);
      assert.equal(result.applied, true);
      assert.deepEqual(result.restartNeeded!.map((r) => [r.field, r.line, r.wanted]), [['listen', 3, `127.0.0.1:${port}`]]);
      assert.equal((await fetch(oldUrl, { signal: AbortSignal.timeout(5000) })).status, 200, 'the server keeps its address');
    } finally {
      subscription.dispose();
    }
    const restarted = await a.supervisor.restart(session);
    assert.equal(restarted?.url, `http://127.0.0.1:${port}/`);
  });

  it('an app that cannot load: the pool shows why, the status bar says so', async () => {
    const a = await api();
    await write('broken.py', 'import os\n\nraise RuntimeError("broken on purpose")\napp = None\n');
    await write('servestack.json', original.replace('"app:app"', '"broken:app"'));
    await vscode.commands.executeCommand('servestack.serve', folder());
    const session = a.supervisor.activeSessions()[0];
    assert.ok(session);
    await until('the pool to report the failure', () => session.pythonPools()[0]?.failure, 30_000);
    // As data, not as text to parse: the code, and the file and line the worker reported.
    const detail = session.pythonPools()[0].failureDetail;
    assert.equal(detail?.code, 'APP_LOAD_FAILED');
    assert.match(detail?.file ?? '', /broken\.py$/);
    assert.equal(detail?.line, 3);
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
