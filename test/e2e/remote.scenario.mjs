// code-server's asExternalUri answers /proxy/PORT/, which strips the path and breaks the
// app's absolute links. Open in Browser must land on /absproxy/PORT/ instead, with a
// Flask page whose url_for('static') stylesheet loads through code-server (checked in
// chromium by the stylesheet's own response, and again from the test process).
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openAndTrustStep } from './workbench.mjs';

export const needsFlask = true;
export const workspaceName = 'flask-remote';

export async function prepare({ root, workspace, appPort }) {
  cpSync(path.join(root, 'examples/flask-app'), workspace, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  const config = path.join(workspace, 'servestack.json');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/"listen":\s*"[^"]*"/, `"listen": "127.0.0.1:${appPort}"`));
}

export const steps = [
  openAndTrustStep,
  {
    name: 'Serve Workspace: the status bar shows 2 workers',
    async run({ wb }) {
      await wb.command('ServeStack: Serve Workspace');
      await wb.waitForStatus(/^web: 2 workers$/, 45_000);
    },
  },
  {
    name: 'Open in Browser lands on /absproxy/PORT/ and the page\'s /static/ stylesheet loads there',
    async run({ wb, context, appPort, codeServerUrl, state }) {
      const styles = [];
      const onResponse = (response) => { if (/\.css(\?|$)/.test(response.url())) styles.push({ url: response.url(), status: response.status() }); };
      context.on('response', onResponse);
      try {
        const opened = context.waitForEvent('page', { timeout: 15_000 });
        await wb.command('ServeStack: Open in Browser');
        const tab = await opened;
        await tab.waitForLoadState('load', { timeout: 15_000 });
        const url = new URL(tab.url());
        const text = await tab.locator('body').innerText({ timeout: 10_000 });
        const color = await tab.evaluate(() => getComputedStyle(document.body).fontFamily);
        await tab.screenshot({ path: state.shot('opened-tab') });
        await tab.close();
        console.log(`    (opened ${url}; stylesheets ${JSON.stringify(styles)})`);
        if (url.pathname !== `/absproxy/${appPort}/`) throw new Error(`the tab opened ${url}, not …/absproxy/${appPort}/`);
        if (!/Rendered by worker \d+/.test(text)) throw new Error(`the tab shows: ${text.slice(0, 200)}`);
        const css = styles.find((s) => s.url.includes(`/absproxy/${appPort}/static/style.css`));
        if (!css) throw new Error(`no stylesheet under /absproxy/${appPort}/static/ was fetched: ${JSON.stringify(styles)}`);
        if (css.status !== 200) throw new Error(`the stylesheet ${css.url} answered ${css.status}`);
        if (!color) throw new Error('no computed style on the page');
        // The same stylesheet from outside the browser, through code-server's URL.
        const again = await fetch(`${codeServerUrl}/absproxy/${appPort}/static/style.css`, { signal: AbortSignal.timeout(5000) });
        if (again.status !== 200 || !/text\/css/.test(again.headers.get('content-type') ?? '')) throw new Error(`through code-server the stylesheet answered ${again.status} ${again.headers.get('content-type')}`);
      } finally {
        context.off('response', onResponse);
      }
    },
  },
  {
    name: 'Stop: Serve is offered again',
    async run({ wb }) {
      await wb.command('ServeStack: Stop');
      await wb.waitForStatus(/^Serve$/, 15_000);
    },
  },
];
