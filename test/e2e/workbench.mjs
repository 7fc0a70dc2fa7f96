// Driving the VS Code 1.96 workbench (code-server) the way a user does: the command
// palette, the status bar, views, the Problems panel, the output channel, the quick fix
// menu. Selectors are the ones shared/VSCODE-TESTING.md found to work.

export class Workbench {
  constructor(page, { codeServerUrl, workspace }) {
    this.page = page;
    this.codeServerUrl = codeServerUrl;
    this.workspace = workspace;
  }

  async ready() {
    await this.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await this.page.waitForSelector('.part.statusbar', { timeout: 30_000 });
  }

  /** Answer the trust prompt, then wait for Restricted Mode to end (the extension activates after). */
  async trust() {
    const button = this.page.getByRole('button', { name: 'Yes, I trust the authors' });
    await button.waitFor({ timeout: 30_000 });
    await button.click();
    await this.until('Restricted Mode to end', async () => !(await this.statusBarTexts()).some((t) => /Restricted Mode/.test(t)), 15_000);
  }

  /**
   * Run a command by its palette title (e.g. "ServeStack: Serve Workspace"). The palette
   * can show a list from before the extension's contributions arrived: when the command is
   * not there within 3 s, it is closed and opened again, until `timeoutMs`.
   */
  async command(title, timeoutMs = 15_000) {
    const page = this.page;
    const input = page.locator('.quick-input-widget .quick-input-box input');
    const focused = page.locator('.quick-input-list .monaco-list-row.focused').first();
    const deadline = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      await this.closeQuickInput();
      await page.keyboard.press('Control+Shift+P');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`>${title}`);
      const attemptEnd = Math.min(deadline, Date.now() + 3_000);
      while (Date.now() < attemptEnd) {
        last = await focused.getAttribute('aria-label').catch(() => null);
        if (last !== null && last.toLowerCase().includes(title.toLowerCase())) {
          await page.keyboard.press('Enter');
          return;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      if (Date.now() >= deadline) throw new Error(`"${title}" is not in the command palette after ${timeoutMs} ms (focused: ${last})`);
    }
  }

  async closeQuickInput() {
    if (await this.page.locator('.quick-input-widget').isVisible().catch(() => false)) await this.page.keyboard.press('Escape');
  }

  /** Pick an entry of an open quick pick by typing its label. */
  async pick(label, fillTimeoutMs = 30_000) {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(label, { timeout: fillTimeoutMs });
    await this.until(`"${label}" in the quick pick`, async () => {
      const text = await this.page.locator('.quick-input-list .monaco-list-row.focused').first().getAttribute('aria-label').catch(() => null);
      return text !== null && text.includes(label);
    }, 10_000);
    await this.page.keyboard.press('Enter');
  }

  /**
   * Run a command that asks with a quick pick (its `placeholder`), and pick `label`. A
   * quick pick closes when the workbench moves focus; CI once saw "Which server?" close
   * between opening and typing (the input hidden, placeholder still set), so the command
   * then runs again, at most three times, and says so in the log.
   */
  async commandPick(title, placeholder, label) {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    for (let attempt = 1; ; attempt++) {
      await this.command(title);
      try {
        await this.until(`the "${placeholder}" quick pick`, async () => await input.isVisible() && (await input.getAttribute('placeholder')) === placeholder, 10_000);
        await this.pick(label, 5_000);
        return;
      } catch (error) {
        if (attempt === 3) throw error;
        console.log(`    (the "${placeholder}" pick of "${title}" closed before "${label}" was picked: ${String(error.message ?? error).split('\n')[0]}; running the command again)`);
        await this.closeQuickInput();
      }
    }
  }

  async statusBarTexts() {
    return this.page.locator('.part.statusbar .statusbar-item').evaluateAll((items) => items.map((i) => i.innerText.trim()).filter(Boolean));
  }

  async waitForStatus(pattern, timeoutMs = 15_000) {
    let last = [];
    await this.until(`a status bar item matching ${pattern}`, async () => {
      last = await this.statusBarTexts();
      return last.some((t) => pattern.test(t));
    }, timeoutMs, () => `status bar: ${JSON.stringify(last)}`);
    return last.find((t) => pattern.test(t));
  }

  async clickStatus(pattern) {
    const items = this.page.locator('.part.statusbar .statusbar-item');
    const texts = await this.statusBarItemTexts();
    const index = texts.findIndex((t) => pattern.test(t));
    if (index < 0) throw new Error(`no status bar item matches ${pattern}: ${JSON.stringify(texts)}`);
    await items.nth(index).locator('a').first().click();
  }

  /** innerText of every status bar item, empty ones included (indexes match the locator's). */
  async statusBarItemTexts() {
    return this.page.locator('.part.statusbar .statusbar-item').evaluateAll((items) => items.map((i) => i.innerText.trim()));
  }

  async focusView(name) {
    await this.command(`Focus on ${name} View`);
    await this.pane(name).waitFor({ state: 'visible', timeout: 10_000 });
  }

  pane(name) {
    return this.page.locator('.pane').filter({ has: this.page.locator('.pane-header .title', { hasText: new RegExp(`^${name}$`, 'i') }) }).first();
  }

  /** The rows of a tree view: "label description". */
  async treeRows(name) {
    return this.pane(name).locator('.pane-body .monaco-list-row').evaluateAll((rows) => rows.map((row) => {
      const label = row.querySelector('.label-name')?.textContent ?? '';
      const description = row.querySelector('.label-description')?.textContent ?? '';
      return `${label} ${description}`.trim();
    }));
  }

  async waitForRows(name, check, what, timeoutMs = 15_000) {
    let rows = [];
    await this.until(what, async () => {
      rows = await this.treeRows(name);
      return check(rows);
    }, timeoutMs, () => `${name} rows: ${JSON.stringify(rows)}`);
    return rows;
  }

  async problems() {
    return this.page.locator('.markers-panel .monaco-list-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /** Quick Open a file by name. */
  async openFile(name) {
    await this.closeQuickInput();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(name);
    await this.until(`"${name}" in Quick Open`, async () => {
      const label = await this.page.locator('.quick-input-list .monaco-list-row.focused').first().getAttribute('aria-label').catch(() => null);
      return label !== null && label.includes(name);
    }, 10_000);
    await this.page.keyboard.press('Enter');
    await this.page.locator('.tabs-container .tab.active', { hasText: name }).waitFor({ timeout: 10_000 });
    await this.page.locator('.editor-instance .monaco-editor textarea').first().waitFor({ timeout: 10_000 });
  }

  /** Put the cursor at a 1-based line and column of the active editor. */
  async goTo(line, column = 1) {
    await this.closeQuickInput();
    await this.page.keyboard.press('Control+G');
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`:${line}:${column}`);
    await this.page.keyboard.press('Enter');
    await this.until(`line ${line} to be current`, async () => {
      const text = await this.statusBarTexts();
      return text.some((t) => t.startsWith(`Ln ${line}, Col ${column}`));
    }, 5_000);
  }

  /** Open the quick fix / code action menu at the cursor and choose an entry. */
  async codeAction(title) {
    const page = this.page;
    let titles = [];
    await this.until(`the code action "${title}"`, async () => {
      if (!(await page.locator('.action-widget').isVisible().catch(() => false))) {
        await page.keyboard.press('Control+.');
        await page.locator('.action-widget').waitFor({ state: 'visible', timeout: 3_000 }).catch(() => undefined);
      }
      titles = await page.locator('.action-widget .monaco-list-row').evaluateAll((rows) => rows.map((r) => r.textContent?.trim() ?? ''));
      if (titles.some((t) => t.includes(title))) return true;
      await page.keyboard.press('Escape');
      return false;
    }, 10_000, () => `offered: ${JSON.stringify(titles)}`);
    // Clicks are blocked by the context view's pointer shield: choose with the keyboard.
    const focused = page.locator('.action-widget .monaco-list-row.focused');
    for (let i = 0; i <= titles.length; i++) {
      if (((await focused.first().textContent().catch(() => '')) ?? '').includes(title)) {
        await page.keyboard.press('Enter');
        return;
      }
      await page.keyboard.press('ArrowDown');
    }
    throw new Error(`could not focus "${title}" in the code action menu`);
  }

  /** The visible lines of the panel's editor (an output channel), top to bottom. */
  async outputLines() {
    return this.page.locator('.part.panel .monaco-editor .view-lines .view-line').evaluateAll((lines) =>
      lines.map((l) => ({ top: parseFloat(l.style.top || '0'), text: (l.textContent ?? '').replace(/\u00a0/g, ' ') }))
        .sort((a, b) => a.top - b.top).map((l) => l.text));
  }

  async until(what, check, timeoutMs = 10_000, detail = () => '') {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        if (await check()) return;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) {
        const extra = await Promise.resolve(detail()).catch(() => '');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra ? ` (${extra})` : ''}${last ? `: ${last.message ?? last}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/** Every scenario's first step: the workbench is up, the folder trusted, and the status item offers Serve. */
export const openAndTrustStep = {
  name: 'the workbench opens and the user trusts the folder',
  async run({ wb }) {
    await wb.ready();
    await wb.trust();
    await wb.waitForStatus(/^Serve$/, 20_000);
  },
};

/** The Workers view's worker rows ("pid 123 · idle …"). */
export const workerRows = (rows) => rows.filter((r) => /^pid \d+ /.test(r));
