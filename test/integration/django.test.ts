// A project made by `django-admin startproject` (Debian's python3-django), served with no
// config: the admin login page and its stylesheets, collected by the project's own
// collectstatic into ServeStack's folder, kept fresh when a source file changes, in a
// real browser; and the export's alias + collectstatic step. Loopback only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../server/config';
import { exportFiles } from '../../server/export';
import { eventually, findPython, request, ROOT, serve, tempDir, type ServeProcess } from './harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const python = findPython(['django']);
const skip = !python ? 'no python3 with django (apt-get install python3-django)' : false;

/* eslint-disable @typescript-eslint/no-explicit-any -- the browser's objects cross as plain JSON */
declare const document: any;
declare const window: any;

describe("Django's static files for a startproject app served with no config", { skip, timeout: 180_000 }, () => {
  let dir: string;
  let server: ServeProcess;
  let adminCss: string;

  before(async () => {
    dir = tempDir();
    const made = spawnSync(python!, ['-m', 'django', 'startproject', 'mysite', dir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(made.status, 0, made.stderr);
    // A project folder of its own static files, found by STATICFILES_DIRS.
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'assets', 'site.css'), 'body { color: rgb(1, 2, 3); }\n');
    appendFileSync(path.join(dir, 'mysite', 'settings.py'), "\nSTATICFILES_DIRS = [BASE_DIR / 'assets']\n");
    const django = spawnSync(python!, ['-c', 'import django, os; print(os.path.dirname(django.__file__))'], { encoding: 'utf8' }).stdout.trim();
    adminCss = readFileSync(path.join(django, 'contrib', 'admin', 'static', 'admin', 'css', 'base.css'), 'utf8');
    server = await serve(dir, ['--python', python!]);
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers /admin/login/ with 200 and its stylesheet /static/admin/css/base.css with 200 text/css, the bytes Django ships', async () => {
    const login = await request(`${server.url}admin/login/`);
    assert.equal(login.status, 200);
    assert.match(login.text, /href="\/static\/admin\/css\/base\.css"/);
    const css = await request(`${server.url}static/admin/css/base.css`);
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assert.equal(css.text, adminCss);
    assert.equal((await request(`${server.url}static/site.css`)).text, 'body { color: rgb(1, 2, 3); }\n');
    assert.equal((await request(`${server.url}static/../mysite/settings.py`)).status, 404, 'never outside the collected folder');
  });

  it('collects again when a source file changes or appears', async () => {
    writeFileSync(path.join(dir, 'assets', 'site.css'), 'body { color: rgb(4, 5, 6); }\n');
    writeFileSync(path.join(dir, 'assets', 'new.css'), 'p { margin: 0; }\n');
    await eventually(async () => (await request(`${server.url}static/site.css`)).text.includes('rgb(4, 5, 6)'), 30_000, 'the edited file collected');
    await eventually(async () => (await request(`${server.url}static/new.css`)).status === 200, 30_000, 'the new file collected');
  });

  it('shows a styled admin login page in chromium: every stylesheet loads and applies', { skip: !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM}` : false }, async () => {
    const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const sheets: string[] = [];
      page.on('response', (r: any) => { if (r.request().resourceType() === 'stylesheet') sheets.push(`${r.status()} ${new URL(r.url()).pathname}`); });
      const response = await page.goto(`${server.url}admin/login/`, { waitUntil: 'load' });
      assert.equal(response.status(), 200);
      assert.ok(sheets.length >= 2, `stylesheets: ${sheets.join(', ')}`);
      assert.deepEqual(sheets.filter((s) => !s.startsWith('200 ')), [], 'every stylesheet answered 200');
      const font: string = await page.evaluate(() => window.getComputedStyle(document.body).fontFamily);
      assert.match(font, /Roboto/, 'base.css applies');
    } finally {
      await browser.close();
    }
  });

  it('exports the collected folder as an NGINX alias of the project\'s STATIC_ROOT, with the collectstatic step', () => {
    // ServeStack's folders for this folder, in the server's state dir (not the user's).
    const saved = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = server.runtimeDir;
    let result;
    try {
      const loaded = loadConfig(dir, { overrides: { port: 8080 } });
      assert.ok(loaded.config, JSON.stringify(loaded.diagnostics));
      result = exportFiles(loaded.config, path.join(dir, 'deploy'));
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
    }
    const conf = result.files.get('nginx.conf')!;
    assert.match(conf, new RegExp(`location /static/ \\{[^}]*alias "?${path.join(dir, 'staticfiles').replace(/[/.]/g, '\\$&')}/"?;`));
    assert.doesNotMatch(conf, /django-static/);
    assert.match(result.files.get('README.md')!, /python manage\.py collectstatic --noinput/);
  });
});
