// The `servestack` task type as a launch configuration's preLaunchTask, as a user starts it:
// "Debug: Select and Start Debugging" → "check the page" (a `node` launch: js-debug is built
// into code-server), whose preLaunchTask is the servestack task. VS Code must hold the
// launch until the server prints "ServeStack ready:" (the $servestack background problem
// matcher ends there); check.js then fetches the page and writes what it got.
// Started before the server listens, it would record a refusal.
// (An earlier version ran a task that dependsOn the servestack task instead, because the
// launch configuration seemed not to be listed: the quick pick had been filled over its
// "debug " prefix, which turned it into file search. The configuration is listed.)
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openAndTrustStep } from './workbench.mjs';

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
    tasks: [
      { type: 'servestack', label: 'serve the app', args: ['--workers', '1', '--python', python], isBackground: true, problemMatcher: '$servestack' },
    ],
  }, null, 2));
  writeFileSync(path.join(workspace, '.vscode/launch.json'), JSON.stringify({
    version: '0.2.0',
    configurations: [{
      type: 'node', request: 'launch', name: 'check the page', program: '${workspaceFolder}/check.js',
      // The Node that runs this test: the extension host's PATH need not have one.
      runtimeExecutable: process.execPath, console: 'internalConsole', preLaunchTask: 'serve the app',
    }],
  }, null, 2));
  writeFileSync(path.join(workspace, 'check.js'), [
    "const fs = require('node:fs');",
    `fetch('http://127.0.0.1:${appPort}/').then(async (r) => ({ status: r.status, body: await r.text() }), (e) => ({ error: String(e.cause ?? e) }))`,
    "  .then((result) => fs.writeFileSync(__dirname + '/check-result.json', JSON.stringify(result)));",
    '',
  ].join('\n'));
}

export const steps = [
  openAndTrustStep,
  {
    name: 'Debug: Select and Start Debugging → "check the page" runs its preLaunchTask (the servestack task) first and launches after the ready line; the page answers',
    async run({ wb, workspace, page, state, appPort }) {
      // Nothing serves the port yet: only the preLaunchTask can start the server.
      const early = await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(3000) }).then((r) => `HTTP ${r.status}`, () => 'refused');
      if (early !== 'refused') throw new Error(`something already answers on ${appPort} before the launch: ${early}`);
      await wb.command('Debug: Select and Start Debugging');
      // The command opens Quick Access with the "debug " prefix: typing over the whole input
      // would drop it and search files instead, so the name goes after the prefix.
      const input = page.locator('.quick-input-widget .quick-input-box input');
      await wb.until('the "debug " quick access', async () => /^debug /.test(await input.inputValue().catch(() => '')), 10_000);
      await input.fill('debug check the page');
      await wb.until('"check the page" among the launch configurations', async () =>
        ((await page.locator('.quick-input-list .monaco-list-row.focused').first().getAttribute('aria-label').catch(() => null)) ?? '').includes('check the page'), 15_000);
      await page.keyboard.press('Enter');
      const result = path.join(workspace, 'check-result.json');
      await wb.until('the launched check.js to write its result', async () => existsSync(result), 60_000);
      await page.screenshot({ path: state.shot('after-launch') });
      const got = JSON.parse(readFileSync(result, 'utf8'));
      if (got.status !== 200 || !/Rendered by worker/.test(got.body ?? '')) throw new Error(`the launched program got ${JSON.stringify(got).slice(0, 300)}`);
    },
  },
  {
    name: 'the servestack task keeps serving after the launched program ended',
    async run({ appPort }) {
      const response = await fetch(`http://127.0.0.1:${appPort}/`, { signal: AbortSignal.timeout(5000) });
      if (response.status !== 200) throw new Error(`the server answered ${response.status} after the launch`);
    },
  },
];
