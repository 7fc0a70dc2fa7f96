import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { api, folder, logTail, until } from './helpers';

/** `count` GETs, `concurrency` at a time, to the loopback server; resolves when all answered. */
async function flood(base: string, count: number, concurrency: number, midway: () => void): Promise<number> {
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      if (i === Math.floor(count / 2)) midway();
      const response = await fetch(`${base}flood/${i}`, { signal: AbortSignal.timeout(30_000) });
      await response.arrayBuffer();
      if (response.status === 200) ok++;
    }
  }));
  return ok;
}

describe('the log under a flood of requests', function () {
  this.timeout(240_000);

  after(async () => {
    await (await api()).supervisor.stopAll();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(`--- ServeStack log ---\n${await logTail()}\n---`);
  });

  it('10,000 requests collapse into counts, and a worker crash in the middle is still shown', async () => {
    const a = await api();
    await vscode.workspace.getConfiguration('servestack').update('openBrowser', false, vscode.ConfigurationTarget.Global);
    const url = await vscode.commands.executeCommand<string>('servestack.serve', folder());
    assert.ok(url);
    const session = a.supervisor.activeSessions()[0];
    await until('two ready workers', () => [...session.workers.values()].filter((w) => w.state === 'idle' || w.state === 'busy').length === 2, 30_000);
    const victim = [...session.workers.values()].find((w) => w.pid)!.pid!;
    const answered = await flood(url.endsWith('/') ? url : `${url}/`, 10_000, 8, () => process.kill(victim, 'SIGKILL'));
    assert.ok(answered >= 9_990, `${answered} of 10,000 answered 200`);
    await vscode.commands.executeCommand('servestack.showLogs');
    const output = await until('the counts in the log', () => vscode.workspace.textDocuments.find((d) =>
      d.uri.scheme === 'output' && /… [\d,]+ more requests in the last \d+ s: [\d,]+ 2xx/.test(d.getText())), 30_000);
    const text = output.getText();
    assert.match(text, new RegExp(`\\(pid ${victim}\\) was killed by SIGKILL`), 'the crash is shown');
    const accessLines = text.split('\n').filter((l) => l.includes('"GET /flood/')).length;
    assert.ok(accessLines < 1_000, `${accessLines} access lines in the channel for 10,000 requests`);
  });
});
