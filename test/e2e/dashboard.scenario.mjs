// The dashboard in the editor: serve the Flask example, look at the Workers and Routes
// views and the status bar's tooltip (with its dashboard link), open ServeStack: Open
// Dashboard (a webview) and find the same worker PIDs there, put a bounded load on the
// app (300 requests on 127.0.0.1) and see the webview's charts and recent requests move,
// Show in Dashboard from a worker's context menu, stop. The runner screenshots every
// step; the named shots (views, status bar, dashboard under load) are the README's.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openAndTrustStep, workerRows } from './workbench.mjs';

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

const pids = workerRows;

/** The webview's inner frame: the one that holds the dashboard page. */
async function dashboardFrame(page) {
  for (const frame of page.frames()) {
    if (await frame.locator('#workers').count().catch(() => 0)) return frame;
  }
  return undefined;
}

/** `count` GETs, `concurrency` at a time. */
async function load(base, count, concurrency) {
  let next = 0;
  const statuses = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      const response = await fetch(`${base}${i % 3 === 0 ? '/api/whoami' : i % 3 === 1 ? '/' : `/missing-${i}`}`, { signal: AbortSignal.timeout(10_000) });
      await response.arrayBuffer();
      statuses.push(response.status);
    }
  }));
  return statuses;
}

export const steps = [
  openAndTrustStep,
  {
    name: 'Serve Workspace: the Workers view lists 2 PIDs and the Routes view the routes',
    async run({ wb, state }) {
      await wb.command('ServeStack: Serve Workspace');
      await wb.waitForStatus(/^web: 2 workers$/, 45_000);
      await wb.focusView('Workers');
      const rows = await wb.waitForRows('Workers', (r) => pids(r).length === 2 && pids(r).every((p) => /idle|busy/.test(p)), 'two booted workers');
      state.pids = pids(rows).map((r) => /^pid (\d+)/.exec(r)[1]).sort();
      await wb.focusView('Routes');
      await wb.waitForRows('Routes', (r) => r.some((x) => x.startsWith('/static/')), 'the static route');
      await wb.pane('Routes').screenshot({ path: state.shot('routes-view') });
    },
  },
  {
    name: 'the status bar tooltip links to the dashboard',
    async run({ wb, page, state }) {
      const items = page.locator('.part.statusbar .statusbar-item');
      const texts = await wb.statusBarItemTexts();
      const item = items.nth(texts.findIndex((t) => /^web: 2 workers$/.test(t)));
      await item.hover();
      const hover = page.locator('.monaco-hover', { hasText: 'Open Dashboard' });
      await hover.waitFor({ timeout: 10_000 });
      const box = await item.boundingBox();
      const hoverBox = await hover.boundingBox();
      const top = Math.max(0, Math.min(box.y, hoverBox.y) - 8);
      await page.screenshot({ path: state.shot('status-bar-tooltip'), clip: { x: 0, y: top, width: Math.max(box.x + box.width, hoverBox.x + hoverBox.width) + 16, height: box.y + box.height - top } });
      await page.mouse.move(700, 400);
    },
  },
  {
    name: 'ServeStack: Open Dashboard shows the worker PIDs in a webview',
    async run({ wb, page, state }) {
      await wb.command('ServeStack: Open Dashboard');
      let frame;
      await wb.until('the dashboard webview', async () => (frame = await dashboardFrame(page)) !== undefined, 20_000);
      let shown = [];
      await wb.until('the PIDs in the dashboard', async () => {
        shown = (await frame.locator('#workers td.pid').allInnerTexts()).sort();
        return JSON.stringify(shown) === JSON.stringify(state.pids);
      }, 15_000, () => `dashboard: ${JSON.stringify(shown)}, Workers view: ${JSON.stringify(state.pids)}`);
      await frame.locator('#connection.live').waitFor({ timeout: 10_000 });
      state.frame = frame;
    },
  },
  {
    name: 'under a bounded load the webview\'s charts and recent requests update',
    async run({ wb, appPort, state }) {
      const frame = state.frame;
      const samples = () => frame.evaluate(() => window.servestackDashboard.model.samples.length);
      let total = 0;
      for (const n of [30, 60, 90, 60, 40, 20]) {
        const seen = await samples();
        const statuses = await load(`http://127.0.0.1:${appPort}`, n, 4);
        total += statuses.length;
        if (statuses.some((s) => s >= 500)) throw new Error(`server errors under load: ${statuses.filter((s) => s >= 500).length}`);
        await wb.until('the next metrics sample', async () => (await samples()) > seen, 10_000);
      }
      const counted = () => frame.evaluate(() => (window.servestackDashboard.charts.status.plot?.data ?? []).slice(1).flat().reduce((a, b) => a + (b ?? 0), 0));
      await wb.until(`${total} requests in the status chart`, async () => (await counted()) >= total, 10_000, async () => `counted ${await counted()}`);
      await wb.until('the recent requests', async () => (await frame.locator('#requests tbody tr', { hasText: '/missing-' }).count()) > 0, 10_000);
      await frame.locator('body').evaluate(() => window.scrollTo(0, 0));
      // The webview's outer iframe (the page sits in an inner one).
      const outer = await (frame.parentFrame() ?? frame).frameElement();
      await outer.screenshot({ path: state.shot('dashboard-under-load') });
    },
  },
  {
    name: 'Show in Dashboard from a worker\'s context menu points at that worker',
    async run({ wb, page, state }) {
      await wb.focusView('Workers');
      const row = wb.pane('Workers').locator('.monaco-list-row', { hasText: `pid ${state.pids[0]}` }).first();
      await wb.pane('Workers').screenshot({ path: state.shot('workers-view') });
      const selected = async () => {
        const frame = await dashboardFrame(page);
        return frame !== undefined && (await frame.locator('#workers tr.selected td.pid').allInnerTexts()).join() === state.pids[0];
      };
      // The context menu is a user's gesture: a click that code-server's menu swallowed (it
      // closes on a focus change) is made again, up to three times, as a user would.
      for (let attempt = 1; ; attempt++) {
        await row.click({ button: 'right' });
        const entry = page.locator('.context-view .action-item', { hasText: 'Show in Dashboard' }).first();
        await entry.waitFor({ timeout: 10_000 });
        // Pointed at, then chosen with Enter, as a keyboard user does: a click that lands as
        // the menu opens is dropped by the workbench (its menus ignore the opening mouse-up).
        await entry.hover();
        await page.keyboard.press('Enter');
        try {
          // Looked up again each time: revealing the panel may give the webview a new frame.
          await wb.until(`worker pid ${state.pids[0]} selected in the dashboard`, selected, 7_000);
          break;
        } catch (error) {
          if (attempt === 3) throw error;
          await page.keyboard.press('Escape');
          await wb.focusView('Workers');
        }
      }
    },
  },
  {
    name: 'Stop: the dashboard says the server stopped, and Serve is offered again',
    async run({ wb, page }) {
      await wb.command('ServeStack: Stop');
      await wb.waitForStatus(/^Serve$/, 20_000);
      const frame = await dashboardFrame(page);
      if (frame) await frame.locator('#connection.down').waitFor({ timeout: 10_000 });
    },
  },
];
