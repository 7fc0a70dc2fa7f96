import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { DebugOutcome } from '../../../extension/debug';
import type { WorkersNode } from '../../../extension/workersTree';
import { api, folder, logTail, until } from './helpers';

// Debug Workers against the real server and real workers under the Debian debugpy. This
// code-server has no marketplace, so the Python Debugger extension is missing: nothing can
// attach, and the extension must say so (the attach itself is tested over DAP in
// test/integration/debug.test.ts).
describe('debugging the workers', function () {
  this.timeout(120_000);

  before(async () => {
    const a = await api();
    const settings = vscode.workspace.getConfiguration('servestack');
    await settings.update('pythonPath', process.env.SERVESTACK_TEST_PYTHON || 'python3', vscode.ConfigurationTarget.Global);
    await settings.update('openBrowser', false, vscode.ConfigurationTarget.Global);
    if (!a.supervisor.activeSessions().length) await vscode.commands.executeCommand('servestack.serve', folder());
    await until('two ready workers', () => a.supervisor.activeSessions()[0]?.workersOf('web').filter((w) => w.state === 'idle').length === 2, 30_000);
  });

  after(async () => {
    await (await api()).supervisor.stopAll();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(`--- ServeStack log ---\n${await logTail()}\n---`);
  });

  async function nodes(): Promise<{ pool: WorkersNode; workers: WorkersNode[] }> {
    const a = await api();
    const [pool] = a.workersTree.getChildren();
    return { pool, workers: a.workersTree.getChildren(pool).filter((n) => n.kind === 'worker') };
  }

  it('Debug Workers on a pool restarts one worker under debugpy and says the Python Debugger is missing', async function () {
    if (vscode.extensions.getExtension('ms-python.debugpy')) this.skip();
    const a = await api();
    const { pool } = await nodes();
    const outcome = await vscode.commands.executeCommand<DebugOutcome | undefined>('servestack.debugWorkers', pool);
    assert.ok(outcome, 'Debug Workers answered');
    assert.equal(outcome.attached, false);
    assert.equal(outcome.workers.length, 1);
    assert.ok(outcome.workers[0].port > 0);
    assert.match(a.debugging.lastMissingExtensionMessage ?? '', /Python Debugger extension \(ms-python\.debugpy\) is not installed.*127\.0\.0\.1:\d+/);
    const item = await until('the debugged worker in the Workers view', async () => {
      for (const node of (await nodes()).workers) {
        const treeItem = a.workersTree.getTreeItem(node);
        if (String(treeItem.description).includes(`debugpy :${outcome.workers[0].port}`)) return treeItem;
      }
      return undefined;
    }, 20_000);
    assert.equal((item.iconPath as vscode.ThemeIcon).id, 'debug-alt');
  });

  it('Dump Stack shows every thread of a worker', async () => {
    const { workers } = await nodes();
    const idle = workers.find((n) => n.kind === 'worker' && n.worker.state === 'idle');
    assert.ok(idle, 'an idle worker');
    const text = await vscode.commands.executeCommand<string>('servestack.dumpStack', idle);
    assert.match(text ?? '', /^worker \d+ \(pid \d+\)/);
    assert.match(text ?? '', /thread MainThread:/);
  });

  it('Stop Debugging returns the pool to normal workers', async () => {
    const { pool } = await nodes();
    await vscode.commands.executeCommand('servestack.stopDebugging', pool);
    const a = await api();
    await until('two normal workers', () => {
      const live = a.supervisor.activeSessions()[0].workersOf('web').filter((w) => w.state !== 'exited');
      return live.length === 2 && live.every((w) => !w.debug && w.state === 'idle');
    }, 30_000);
  });

  it('a servestack debug configuration (what F5 and launch.json start) debugs the pool', async () => {
    const a = await api();
    await vscode.debug.startDebugging(folder(), { type: 'servestack', request: 'attach', name: 'ServeStack: debug pool web', pool: 'web' });
    await until('a debugged worker', () => a.supervisor.activeSessions()[0].workersOf('web').some((w) => w.debug && w.debug.port > 0 && w.state !== 'draining'), 30_000);
    await vscode.commands.executeCommand('servestack.stopDebugging');
    await until('no debugged worker', () => !a.supervisor.activeSessions()[0].workersOf('web').some((w) => w.debug), 30_000);
  });
});
