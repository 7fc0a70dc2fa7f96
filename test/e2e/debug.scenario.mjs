// Debugging the live pool, as a user sees it in a real VS Code (code-server) and Debian's
// chromium: Debug Workers from the pool's context menu in the Workers view restarts a
// worker under debugpy and the view shows it; code-server has no marketplace, so the
// Python Debugger extension is missing and its clear message (with Install) is shown;
// then a hung request times out and the worker's "stuck in app.py:N" entry opens app.py
// at that line. A throwaway Flask app with a 2 s pool timeout.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openAndTrustStep, workerRows } from './workbench.mjs';

/** Skipped (with the reason printed) when /usr/bin/python3 cannot import flask. */
export const needsFlask = true;
export const workspaceName = 'debug-app';

const STUCK_LINE = 12;
const APP = [
  'import os, time', // 1
  'from flask import Flask', // 2
  'app = Flask(__name__)', // 3
  '', // 4
  '@app.route("/")', // 5
  'def index():', // 6
  '    return "hello from %d\\n" % os.getpid()', // 7
  '', // 8
  '', // 9
  '@app.route("/slow")', // 10
  'def slow_query():', // 11
  '    time.sleep(30)', // 12 ← where the hung request is stuck
  '    return "slow\\n"', // 13
  '',
].join('\n');

export async function prepare({ workspace, appPort }) {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(workspace, { recursive: true });
  writeFileSync(path.join(workspace, 'app.py'), APP);
  writeFileSync(path.join(workspace, 'servestack.json'), JSON.stringify({
    listen: `127.0.0.1:${appPort}`,
    pools: { web: { app: 'app:app', workers: 2, timeout: '2s' } },
    routes: [{ path: '/', pool: 'web' }],
  }, null, 2));
}

const pids = workerRows;

export const steps = [
  openAndTrustStep,
  {
    name: 'Serve Workspace: two workers in the Workers view',
    async run({ wb }) {
      await wb.command('ServeStack: Serve Workspace');
      await wb.waitForStatus(/^web: 2 workers$/, 45_000);
      await wb.focusView('Workers');
      await wb.waitForRows('Workers', (r) => pids(r).length === 2 && pids(r).every((p) => /idle|busy/.test(p)), 'two booted workers', 30_000);
    },
  },
  {
    name: 'Debug Workers is offered on the pool; the missing Python Debugger is said clearly, with Install',
    async run({ wb, page, state }) {
      const row = wb.pane('Workers').locator('.monaco-list-row', { hasText: /^web/ }).first();
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Python Debugger extension (ms-python.debugpy) is not installed' });
      // A context menu that code-server swallowed (it closes on a focus change) is opened again, as a user would.
      for (let attempt = 1; ; attempt++) {
        await row.click({ button: 'right' });
        const entry = page.locator('.context-view .action-item', { hasText: 'Debug Workers' }).first();
        try {
          await entry.waitFor({ timeout: 5_000 });
          await page.screenshot({ path: state.shot('pool-context-menu') });
          await entry.click();
          await toast.waitFor({ timeout: 45_000 });
          break;
        } catch (error) {
          if (attempt === 3) throw error;
          await page.keyboard.press('Escape');
          await wb.focusView('Workers');
        }
      }
      await toast.getByRole('button', { name: 'Install Python Debugger' }).waitFor({ timeout: 5_000 });
      const text = await toast.innerText();
      if (!/debugpy listens on 127\.0\.0\.1:\d+/.test(text)) throw new Error(`the message names no port: ${text}`);
    },
  },
  {
    name: 'the Workers view shows the debugged worker and its debugpy port',
    async run({ wb }) {
      const rows = await wb.waitForRows('Workers', (r) => pids(r).some((p) => /debugpy :\d+/.test(p)) && pids(r).length === 2, 'a worker under debugpy beside a normal one', 30_000);
      if (pids(rows).filter((p) => /debugpy :\d+/.test(p)).length !== 1) throw new Error(`one debugged worker expected: ${JSON.stringify(rows)}`);
    },
  },
  {
    name: 'Return to Normal Workers (Stop Debugging): two normal workers again',
    async run({ wb, page }) {
      await page.keyboard.press('Escape');
      await wb.command('ServeStack: Return to Normal Workers (Stop Debugging)');
      await wb.waitForRows('Workers', (r) => pids(r).length === 2 && !pids(r).some((p) => /debugpy/.test(p)) && pids(r).every((p) => /idle|busy/.test(p)), 'two normal workers', 30_000);
    },
  },
  {
    name: "a hung request times out; the worker's \"stuck in app.py:N\" entry opens app.py at that line",
    async run({ wb, page, appPort }) {
      const response = await fetch(`http://127.0.0.1:${appPort}/slow`, { signal: AbortSignal.timeout(20_000) });
      if (response.status !== 504) throw new Error(`GET /slow answered ${response.status}, not the pool timeout's 504`);
      const entry = `stuck in app.py:${STUCK_LINE} in slow_query`;
      await wb.focusView('Workers');
      await wb.waitForRows('Workers', (r) => r.some((x) => x.includes(`last timeout: ${entry}`)), `a worker entry "${entry}"`, 15_000);
      // The view re-renders its rows every second (worker figures): a click that lands on a
      // row being replaced opens nothing, so the user's gesture is made again, up to 3 times.
      const tab = page.locator('.tabs-container .tab.active', { hasText: 'app.py' });
      for (let attempt = 1; ; attempt++) {
        await wb.pane('Workers').locator('.monaco-list-row', { hasText: entry }).first().click();
        const opened = await tab.waitFor({ timeout: 4_000 }).then(() => true, () => false);
        if (opened) break;
        if (attempt === 3) throw new Error(`clicking "${entry}" 3 times opened no app.py tab`);
      }
      await wb.until(`the cursor on line ${STUCK_LINE}`, async () => (await wb.statusBarTexts()).some((t) => t.startsWith(`Ln ${STUCK_LINE},`)), 10_000, async () => JSON.stringify(await wb.statusBarTexts()));
    },
  },
  {
    name: 'Stop: the workers end',
    async run({ wb }) {
      // From the status bar: the palette's first "Stop" match is now the recently used Return to Normal Workers (Stop Debugging).
      await wb.clickStatus(/^web: 2 workers$/);
      await wb.pick('Stop');
      await wb.waitForStatus(/^Serve$/, 15_000);
    },
  },
];
