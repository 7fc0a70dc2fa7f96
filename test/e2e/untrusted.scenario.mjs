// Restricted Mode: a user who does not trust the folder still gets diagnostics on
// servestack.json, and Serve explains why it does not run the folder's code. Runs on a
// throwaway copy of the extension suite's workspace (no framework needed).
import { cpSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export const needsFlask = false;
export const workspaceName = 'untrusted-app';

export async function prepare({ root, workspace }) {
  cpSync(path.join(root, 'test/extension/fixtures/workspace'), workspace, { recursive: true });
}

export const steps = [
  {
    name: 'the user does not trust the folder: Restricted Mode',
    async run({ wb, page }) {
      await wb.ready();
      const button = page.getByRole('button', { name: "No, I don't trust the authors" });
      await button.waitFor({ timeout: 30_000 });
      await button.click();
      await wb.waitForStatus(/Restricted Mode/, 10_000);
    },
  },
  {
    name: 'the Workers view explains that serving needs trust',
    async run({ wb }) {
      await wb.focusView('Workers');
      await wb.until('the Restricted Mode welcome text', async () =>
        /Restricted Mode: ServeStack does not run its code/.test(await wb.pane('Workers').innerText()), 10_000);
    },
  },
  {
    name: 'Serve Workspace says why it does not serve, and starts nothing',
    async run({ wb, page, workspace }) {
      await wb.command('ServeStack: Serve Workspace');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'does not serve an untrusted workspace' });
      await toast.waitFor({ timeout: 10_000 });
      const texts = await wb.statusBarTexts();
      if (texts.some((t) => /workers?$/.test(t))) throw new Error(`a server runs: ${JSON.stringify(texts)}`);
      void workspace;
    },
  },
  {
    name: 'diagnostics on servestack.json still work',
    async run({ wb, page, workspace }) {
      await page.keyboard.press('Escape');
      await wb.openFile('servestack.json');
      const lines = readFileSync(path.join(workspace, 'servestack.json'), 'utf8').split('\n');
      const line = lines.findIndex((l) => l.includes('"path": "/", "pool": "web"'));
      const column = lines[line].indexOf('"web"') + 2;
      await wb.goTo(line + 1, column);
      for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+ArrowRight');
      await page.keyboard.type('nope');
      await wb.focusView('Problems');
      let rows = [];
      await wb.until('the problem in Restricted Mode', async () => {
        rows = await wb.problems();
        return rows.some((r) => r.includes('no pool is named "nope"'));
      }, 10_000, () => JSON.stringify(rows));
    },
  },
];

steps.push({
  name: 'the getting-started walkthrough opens on its first step',
  async run({ wb, page }) {
    await wb.command('Welcome: Open Walkthrough...');
    await wb.pick('Get started with ServeStack');
    await wb.until('the walkthrough', async () =>
      /Serve the workspace/.test(await page.locator('.gettingStartedContainer, .getting-started-container, .gettingStarted').first().innerText().catch(() => '')), 10_000);
  },
});
