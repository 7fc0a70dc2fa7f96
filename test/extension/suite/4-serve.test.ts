import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ServerSession } from '../../../extension/supervisor';
import type { WorkersNode } from '../../../extension/workersTree';
import { api, EXTENSION_ID, folder, logTail, until } from './helpers';

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: no such process
  }
}

describe('serving the workspace', function () {
  this.timeout(90_000);
  let session: ServerSession | undefined;

  before(async () => {
    const a = await api();
    const settings = vscode.workspace.getConfiguration('servestack');
    await settings.update('pythonPath', process.env.SERVESTACK_TEST_PYTHON || 'python3', vscode.ConfigurationTarget.Global);
    await settings.update('openBrowser', false, vscode.ConfigurationTarget.Global);
    assert.equal(a.supervisor.activeSessions().length, 0);
  });

  after(async () => {
    const a = await api();
    await a.supervisor.stopAll();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(`--- ServeStack log ---\n${await logTail()}\n---`);
  });

  async function workerNodes(): Promise<WorkersNode[]> {
    const a = await api();
    const [pool] = a.workersTree.getChildren();
    return pool ? a.workersTree.getChildren(pool).filter((n) => n.kind === 'worker') : [];
  }

  it('Serve Workspace starts the server and its workers', async () => {
    const a = await api();
    const url = await vscode.commands.executeCommand<string>('servestack.serve', folder());
    assert.match(url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/?$/);
    session = a.supervisor.activeSessions()[0];
    assert.ok(session);
    assert.equal(session.state, 'running');
    assert.equal(session.interpreter?.source, 'setting');
  });

  it('shows the pool and two workers in the Workers view', async () => {
    const a = await api();
    const [pool, ...rest] = a.workersTree.getChildren();
    assert.equal(rest.length, 0);
    const poolItem = a.workersTree.getTreeItem(pool);
    assert.equal(poolItem.label, 'web');
    assert.equal(poolItem.contextValue, 'pool');
    assert.match(String(poolItem.description), /^2 workers · app:app$/);
    const workers = await workerNodes();
    assert.equal(workers.length, 2);
    for (const node of workers) {
      const item = a.workersTree.getTreeItem(node);
      assert.match(String(item.label), /^pid \d+$/);
      assert.equal(item.contextValue, 'worker');
      assert.match(String(item.description), /^(idle|busy) · \d+ req/);
      assert.ok(item.tooltip instanceof vscode.MarkdownString && /Uptime/.test(item.tooltip.value));
    }
  });

  it('shows the worker count in the status bar', async () => {
    const a = await api();
    await until('the status bar', () => a.statusBar.item.text === '$(server-process) web: 2 workers');
    const tooltip = a.statusBar.item.tooltip;
    assert.ok(tooltip instanceof vscode.MarkdownString && tooltip.value.includes(session!.url!));
    assert.equal(a.statusBar.item.command, 'servestack.statusBarMenu');
  });

  it('answers HTTP from a Python worker and serves static files from the proxy', async () => {
    const page = await get(session!.url!);
    assert.equal(page.status, 200);
    assert.match(page.body, /^hello from worker \d+/);
    const pid = Number(/worker (\d+)/.exec(page.body)![1]);
    assert.ok([...session!.workers.values()].some((w) => w.pid === pid), 'the answering worker is listed');
    const file = await get(new URL('/static/hello.txt', session!.url!).toString());
    assert.equal(file.status, 200);
    assert.equal(file.body.trim(), 'hello static');
  });

  it('lists the running routes', async () => {
    const a = await api();
    const routes = await until('routes from the server', async () => {
      const nodes = await a.routesTree.getChildren();
      return nodes.length === 2 && nodes.every((n) => n.kind === 'route' && n.running) ? nodes : undefined;
    });
    assert.deepEqual(routes.map((n) => a.routesTree.getTreeItem(n).contextValue), ['route', 'route']);
  });

  it('scales to three workers', async () => {
    const a = await api();
    await vscode.commands.executeCommand('servestack.scaleWorkers', session, 3);
    await until('three booted workers', async () => {
      const workers = await workerNodes();
      return workers.length === 3 && workers.every((n) => n.kind === 'worker' && (n.worker.state === 'idle' || n.worker.state === 'busy'));
    }, 30_000);
    await until('the status bar', () => a.statusBar.item.text === '$(server-process) web: 3 workers');
  });

  it('scales back down with Remove a Worker on the pool', async () => {
    const a = await api();
    const [pool] = a.workersTree.getChildren();
    await vscode.commands.executeCommand('servestack.removeWorker', pool);
    await until('two workers', async () => (await workerNodes()).length === 2, 30_000);
  });

  it('Reload Workers replaces every worker with a new process', async () => {
    const before = (await workerNodes()).map((n) => n.kind === 'worker' && n.worker.pid);
    await vscode.commands.executeCommand('servestack.reloadWorkers', session);
    await until('two new booted workers', async () => {
      const now = await workerNodes();
      return now.length === 2 && now.every((n) => n.kind === 'worker' && !before.includes(n.worker.pid) && n.worker.state === 'idle');
    }, 30_000);
  });

  it('Kill Worker on a worker: the pool starts another', async () => {
    const [victim] = await workerNodes();
    assert.ok(victim.kind === 'worker');
    await vscode.commands.executeCommand('servestack.killWorker', victim);
    await until('the killed worker to be replaced', async () => {
      const now = await workerNodes();
      return now.length === 2 && now.every((n) => n.kind === 'worker' && n.worker.pid !== victim.worker.pid && n.worker.state === 'idle');
    }, 30_000);
    assert.ok(!alive(victim.worker.pid));
  });

  it('Stop ends the server and its workers', async () => {
    const a = await api();
    const pids = [session!.serverPid, ...[...session!.workers.values()].map((w) => w.pid)];
    await vscode.commands.executeCommand('servestack.stop', session);
    assert.equal(session!.state, 'stopped');
    assert.equal(a.supervisor.activeSessions().length, 0);
    await until('every process to be gone', () => pids.every((pid) => !alive(pid)), 10_000);
    await until('the Serve item', () => a.statusBar.item.text === '$(play) Serve');
    assert.deepEqual(a.workersTree.getChildren(), []);
  });

  it('a server stopped from a terminal (`servestack stop`) ends without a crash report', async () => {
    const a = await api();
    await vscode.commands.executeCommand('servestack.serve', folder());
    const running = a.supervisor.activeSessions()[0];
    assert.ok(running);
    let crashed = false;
    const subscription = running.onDidExitUnexpectedly(() => { crashed = true; });
    const cli = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'cli.js');
    // Asynchronously, as a terminal would: the extension host must keep answering meanwhile.
    await new Promise<void>((resolve, reject) => execFile(process.execPath, [cli, 'stop', '--dir', folder().uri.fsPath], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 20_000,
    }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve())));
    await until('the session to end', () => running.state === 'stopped', 15_000);
    subscription.dispose();
    assert.equal(crashed, false);
  });

  it('survives the server crashing: the session ends and the workers exit by themselves', async () => {
    const a = await api();
    await vscode.commands.executeCommand('servestack.serve', folder());
    const crashed = a.supervisor.activeSessions()[0];
    assert.ok(crashed?.serverPid);
    const pids = [...crashed.workers.values()].map((w) => w.pid);
    const exited = new Promise((resolve) => crashed.onDidExitUnexpectedly(resolve));
    process.kill(crashed.serverPid, 'SIGKILL');
    await exited;
    assert.equal(crashed.state, 'stopped');
    await until('the orphaned workers to exit', () => pids.every((pid) => !alive(pid)), 15_000);
  });
});
