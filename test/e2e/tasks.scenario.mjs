// The `servestack` task type as a preLaunchTask: Start Debugging runs the task, which
// must hold the launch until the server prints "ServeStack ready:" (the $servestack
// background problem matcher); the launched program then fetches the page and writes
// what it got. A program launched before the server listens would record a refusal.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export const needsFlask = true;
export const workspaceName = 'flask-tasks';

export async function prepare({ root, workspace, appPort }) {
  cpSync(path.join(root, 'examples/flask-app'), workspace, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  const config = path.join(workspace, 'servestack.json');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/"listen":\s*"[^"]*"/, `"listen": "127.0.0.1:${appPort}"`));
  mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  const python = process.env.SERVESTACK_TEST_PYTHON ?? '/usr/bin/python3';
  writeFileSync(path.join(workspace, '.vscode/tasks.json'), JSON.stringify({
    version: '2.0.0',
    tasks: [{ type: 'servestack', label: 'serve the app', args: ['--workers', '1', '--python', python], isBackground: true, problemMatcher: '$servestack' }],
  }, null, 2));
  writeFileSync(path.join(workspace, '.vscode/launch.json'), JSON.stringify({
    version: '0.2.0',
    configurations: [{ type: 'node', request: 'launch', name: 'check the page', program: '${workspaceFolder}/check.js', preLaunchTask: 'serve the app' }],
  }, null, 2));
  writeFileSync(path.join(workspace, 'check.js'), [
    "const fs = require('node:fs');",
    `fetch('http://127.0.0.1:${appPort}/').then(async (r) => ({ status: r.status, body: await r.text() }), (e) => ({ error: String(e.cause ?? e) }))`,
    "  .then((result) => fs.writeFileSync(__dirname + '/check-result.json', JSON.stringify(result)));",
    '',
  ].join('\n'));
}

export const steps = [
  {
    name: 'the workbench opens and the user trusts the folder',
    async run({ wb }) {
      await wb.ready();
      await wb.trust();
      await wb.waitForStatus(/^Serve$/, 20_000);
    },
  },
  {
    name: 'Start Debugging runs the servestack task first; the program launched after it finds the page',
    async run({ wb, workspace, page, state }) {
      await wb.command('Debug: Start Debugging');
      const result = path.join(workspace, 'check-result.json');
      await wb.until('check.js to write its result', async () => existsSync(result), 60_000);
      await page.screenshot({ path: state.shot('after-launch') });
      const got = JSON.parse(readFileSync(result, 'utf8'));
      if (got.status !== 200 || !/Rendered by worker/.test(got.body ?? '')) throw new Error(`the launched program got ${JSON.stringify(got).slice(0, 300)}`);
    },
  },
  {
    name: 'the task terminal shows the ready line',
    async run({ wb, page }) {
      await wb.until('the ready line in the terminal', async () => {
        const text = await page.locator('.part.panel .terminal-wrapper, .part.panel .xterm-accessibility-tree, .part.panel .xterm-rows').allInnerTexts().catch(() => []);
        return text.join('\n').includes('ServeStack ready: http://127.0.0.1:');
      }, 15_000);
    },
  },
  {
    name: 'Terminate Task stops the server',
    async run({ wb, appPort }) {
      await wb.command('Tasks: Terminate Task');
      await wb.pick('serve the app').catch(() => undefined); // asked only when more than one runs
      await wb.until('the port to close', async () => {
        try {
          await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(2000) });
          return false;
        } catch {
          return true;
        }
      }, 20_000);
    },
  },
];
