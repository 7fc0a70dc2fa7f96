// The `servestack` task type as a dependency, the mechanism preLaunchTask uses too:
// "Tasks: Run Task" → "check the page", which dependsOn the servestack task. VS Code must
// hold the dependent until the server prints "ServeStack ready:" (the $servestack
// background problem matcher ends there); check.js then fetches the page and writes what
// it got. Started before the server listens, it would record a refusal. launch.json's
// preLaunchTask names the same task (left for a person to try with F5).
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
      { type: 'process', label: 'check the page', command: process.execPath, args: ['${workspaceFolder}/check.js'], dependsOn: ['serve the app'], problemMatcher: [] },
    ],
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
  openAndTrustStep,
  {
    name: 'Run Task "check the page" starts the servestack task first and waits for its ready line; the page answers',
    async run({ wb, workspace, page, state }) {
      // Quick Open's "task " prefix lists the tasks (the palette focuses "Restart Running Task" first).
      await wb.closeQuickInput();
      await page.keyboard.press('Control+P');
      const input = page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill('task check the page');
      await wb.until('"check the page" among the tasks', async () =>
        ((await page.locator('.quick-input-list .monaco-list-row.focused').first().getAttribute('aria-label').catch(() => null)) ?? '').includes('check the page'), 15_000);
      await page.keyboard.press('Enter');
      const result = path.join(workspace, 'check-result.json');
      await wb.until('check.js to write its result', async () => existsSync(result), 60_000);
      await page.screenshot({ path: state.shot('after-launch') });
      const got = JSON.parse(readFileSync(result, 'utf8'));
      if (got.status !== 200 || !/Rendered by worker/.test(got.body ?? '')) throw new Error(`the launched program got ${JSON.stringify(got).slice(0, 300)}`);
    },
  },
];
