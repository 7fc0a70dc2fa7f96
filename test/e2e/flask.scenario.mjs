// What a user does with the Flask example, in a real VS Code (code-server) and Debian's
// chromium: serve it from the command palette, see its workers, scale from the status bar,
// break and fix servestack.json through the Problems panel and a quick fix, add a route
// from a Flask decorator, stop. Runs on a throwaway copy of examples/flask-app (whose
// "listen" is moved to a free port); the runner screenshots every step.
import { cpSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openAndTrustStep, workerRows } from './workbench.mjs';

/** Skipped (with the reason printed) when /usr/bin/python3 cannot import flask. */
export const needsFlask = true;
export const workspaceName = 'flask-app';

export async function prepare({ root, workspace, appPort }) {
  cpSync(path.join(root, 'examples/flask-app'), workspace, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  const config = path.join(workspace, 'servestack.json');
  const text = readFileSync(config, 'utf8');
  const moved = text.replace(/"listen":\s*"[^"]*"/, `"listen": "127.0.0.1:${appPort}"`);
  if (moved === text) throw new Error('examples/flask-app/servestack.json has no "listen" to move to a free port');
  writeFileSync(config, moved);
}

/** 1-based line and column of the first match of `pattern` in a workspace file. */
function locate(workspace, file, pattern) {
  const lines = readFileSync(path.join(workspace, file), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = pattern.exec(lines[i]);
    if (m) return { line: i + 1, column: m.index + 1, match: m[0] };
  }
  throw new Error(`${file} has no line matching ${pattern}`);
}

/** The pid of the ServeStack server serving `workspace` (a `cli.js serve` whose cwd it is). */
function serverProcess(workspace) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) !== workspace) continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('cli.js')) && cmd.includes('serve')) return Number(entry);
    } catch {
      continue; // gone, or not readable
    }
  }
  return undefined;
}

async function get(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.text() };
}

const pids = workerRows;

export const steps = [
  openAndTrustStep,
  {
    name: 'Serve Workspace from the command palette: the status bar shows 2 workers',
    async run({ wb }) {
      await wb.command('ServeStack: Serve Workspace');
      await wb.waitForStatus(/^web: 2 workers$/, 45_000);
    },
  },
  {
    name: 'the Workers view lists the pool and 2 PIDs',
    async run({ wb, state }) {
      await wb.focusView('Workers');
      const rows = await wb.waitForRows('Workers', (r) => pids(r).length === 2 && pids(r).every((p) => /idle|busy/.test(p)), 'two booted workers');
      if (!rows.some((r) => /^web 2 workers · app:app$/.test(r))) throw new Error(`no pool row in ${JSON.stringify(rows)}`);
      state.pids = pids(rows).map((r) => Number(/^pid (\d+)/.exec(r)[1]));
    },
  },
  {
    name: 'the page answers over HTTP, from one of those workers, and the proxy serves /static/',
    async run({ appPort, state }) {
      const page = await get(`http://127.0.0.1:${appPort}/`);
      if (page.status !== 200) throw new Error(`GET / answered ${page.status}`);
      const who = JSON.parse((await get(`http://127.0.0.1:${appPort}/api/whoami`)).body);
      if (!state.pids.includes(who.pid)) throw new Error(`pid ${who.pid} answered, the view lists ${state.pids}`);
      const css = await get(`http://127.0.0.1:${appPort}/static/style.css`);
      if (css.status !== 200) throw new Error(`GET /static/style.css answered ${css.status}`);
    },
  },
  {
    name: 'the Workers view counts the requests each worker handled',
    async run({ wb }) {
      await wb.waitForRows('Workers', (r) => pids(r).some((p) => /· [1-9]\d* req/.test(p)), 'a worker with requests', 10_000);
    },
  },
  {
    name: 'scale from the status bar: Add a worker → 3 PIDs',
    async run({ wb }) {
      await wb.clickStatus(/^web: 2 workers$/);
      await wb.pick('Add a worker');
      await wb.waitForStatus(/^web: 3 workers$/, 15_000);
      await wb.waitForRows('Workers', (r) => pids(r).length === 3 && pids(r).every((p) => /idle|busy/.test(p)), 'three booted workers', 30_000);
    },
  },
  {
    name: 'Open in browser from the status bar opens the page through asExternalUri',
    async run({ wb, context, state }) {
      const opened = context.waitForEvent('page', { timeout: 15_000 });
      await wb.clickStatus(/^web: 3 workers$/);
      await wb.pick('Open in browser');
      const tab = await opened;
      await tab.waitForLoadState('domcontentloaded', { timeout: 15_000 });
      state.openedUrl = tab.url();
      const text = await tab.locator('body').innerText({ timeout: 10_000 });
      await tab.screenshot({ path: state.shot('opened-tab') });
      await tab.close();
      if (!/Rendered by worker \d+/.test(text)) throw new Error(`the opened tab (${state.openedUrl}) shows: ${text.slice(0, 200)}`);
      console.log(`    (opened ${state.openedUrl})`);
    },
  },
  {
    name: 'the ServeStack output channel shows the server log',
    async run({ wb }) {
      await wb.command('Output: Show Output Channels');
      await wb.pick('ServeStack');
      let lines = [];
      await wb.until('server lines in the output', async () => {
        lines = await wb.outputLines();
        return lines.some((l) => /worker 3 ready|scaling to 3 workers/.test(l));
      }, 10_000, () => JSON.stringify(lines.slice(-10)));
    },
  },
  {
    name: 'a broken servestack.json shows in the Problems panel',
    async run({ wb, page, workspace, state }) {
      await wb.openFile('servestack.json');
      const at = locate(workspace, 'servestack.json', /(?<="path": "\/", "pool": ")web/);
      await wb.goTo(at.line, at.column);
      for (let i = 0; i < 'web'.length; i++) await page.keyboard.press('Shift+ArrowRight');
      await page.keyboard.type('wbe');
      await wb.focusView('Problems');
      let rows = [];
      await wb.until('the problem', async () => {
        rows = await wb.problems();
        return rows.some((r) => r.includes('no pool is named "wbe"'));
      }, 10_000, () => JSON.stringify(rows));
      state.brokenAt = at;
    },
  },
  {
    name: 'its quick fix repairs it and the problem goes away',
    async run({ wb, page, workspace, state }) {
      await wb.command('View: Focus Active Editor Group');
      await wb.goTo(state.brokenAt.line, state.brokenAt.column + 1);
      await wb.codeAction("Use the pool 'web'");
      await page.keyboard.press('Control+S');
      await wb.focusView('Problems');
      await wb.until('no problem left', async () => !(await wb.problems()).some((r) => r.includes('wbe')), 10_000);
      await wb.until('the fix on disk', async () => /"path": "\/", "pool": "web"/.test(readFileSync(path.join(workspace, 'servestack.json'), 'utf8')), 5_000);
    },
  },
  {
    name: "the code action on a Flask route adds the route",
    async run({ wb, workspace }) {
      await wb.openFile('app.py');
      const at = locate(workspace, 'app.py', /@app\.get\("\/api\/items"\)/);
      await wb.goTo(at.line, at.column + 1);
      await wb.codeAction("Add a ServeStack route for '/api/items'");
      await wb.until('the route in servestack.json', async () =>
        /\{\s*"path": "\/api\/items",\s*"pool": "web"\s*\}/.test(readFileSync(path.join(workspace, 'servestack.json'), 'utf8')), 10_000);
      await wb.focusView('Routes');
      await wb.waitForRows('Routes', (r) => r.some((x) => x === '/api/items pool web'), 'the new route in the Routes view', 15_000);
    },
  },
  {
    name: 'the server crashes: a notification offers Restart, which serves again',
    async run({ wb, page, workspace, state }) {
      const server = serverProcess(workspace);
      if (!server) throw new Error(`no server process runs in ${workspace}`);
      process.kill(server, 'SIGKILL');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'stopped unexpectedly' });
      await toast.waitFor({ timeout: 10_000 });
      await wb.waitForStatus(/^Serve$/, 10_000);
      await page.screenshot({ path: state.shot('crash-notification') });
      await toast.getByRole('button', { name: 'Restart' }).click();
      await wb.waitForStatus(/^web: 2 workers$/, 30_000);
      await wb.focusView('Workers');
      await wb.waitForRows('Workers', (r) => pids(r).length === 2 && pids(r).every((p) => /idle|busy/.test(p)), 'two workers again', 30_000);
    },
  },
  {
    name: 'Stop from the command palette: the workers end and Serve is offered again',
    async run({ wb, state }) {
      await wb.command('ServeStack: Stop');
      await wb.waitForStatus(/^Serve$/, 15_000);
      await wb.focusView('Workers');
      await wb.waitForRows('Workers', (r) => r.length === 0, 'an empty Workers view');
      await wb.until('the workers to exit', () => state.pids.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }), 10_000);
    },
  },
];
