// The developer loop in a real browser (Debian's chromium, driven by playwright-core)
// against the real server (`node dist/cli.js serve`) and a real Flask app whose workers
// take a second to boot, so a page that refreshed before the new workers were ready
// would show the old page (the old workers still serve during a rolling reload). Every
// navigation and document status of the page is recorded. Loopback only; every process
// is ours and stopped here.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { eventually, findPython, request, ROOT, serve, tempDir, type ServeProcess } from './harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const python = findPython(['flask']);
const skip = !python ? 'no python3 with flask (apt-get install python3-flask)' : !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : false;

/* eslint-disable @typescript-eslint/no-explicit-any -- the browser's objects cross as plain JSON */
type Page = any;
type Browser = any;
declare const window: any;
declare const document: any;

/** What a browser's page load sends: the live-reload script goes only into pages asked for so. */
const BROWSER = { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

const APP = `import os, time
from flask import Flask, render_template

# Each worker boots slowly: a refresh that raced the reload would be answered by an old worker.
time.sleep(float(os.environ.get("BOOT_DELAY", "0")))
app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html")
`;

const page = (heading: string, script = '') => `<!doctype html>
<html><head><title>devloop</title><link rel="stylesheet" href="/static/site.css"></head>
<body><h1 id="heading">${heading}</h1>${script}</body></html>
`;

describe('developer loop: refresh, stylesheets, failures and the console in chromium', { skip, timeout: 300_000 }, () => {
  let dir: string;
  let server: ServeProcess;
  let browser: Browser;
  let tab: Page;
  const navigations: string[] = [];
  const documentStatuses: number[] = [];
  const failedNavigations: string[] = [];

  const write = (rel: string, text: string) => writeFileSync(path.join(dir, rel), text);
  const heading = () => tab.evaluate(() => document.getElementById('heading')?.textContent ?? null);
  const live = () => tab.waitForFunction(() => window.__servestackLiveReload?.state === 'live', null, { timeout: 20_000 });
  const reloadsCompleted = () => (server.output().match(/reload complete/g) ?? []).length;

  before(async () => {
    dir = tempDir();
    mkdirSync(path.join(dir, 'templates'));
    mkdirSync(path.join(dir, 'static'));
    write('app.py', APP);
    write('templates/index.html', page('one'));
    write('static/site.css', 'h1 { color: rgb(255, 0, 0); }\n');
    write('servestack.json', JSON.stringify({
      pools: { web: { app: 'app:app', workers: 2, reload: true } },
      routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }],
    }));
    server = await serve(dir, ['--python', python!], { BOOT_DELAY: '1' });
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/, 30_000);
    const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    tab = await (await browser.newContext()).newPage();
    tab.on('framenavigated', (frame: any) => { if (frame === tab.mainFrame()) navigations.push(frame.url()); });
    tab.on('response', (response: any) => { if (response.request().isNavigationRequest()) documentStatuses.push(response.status()); });
    tab.on('requestfailed', (req: any) => { if (req.isNavigationRequest()) failedNavigations.push(`${req.url()}: ${req.failure()?.errorText}`); });
    await tab.goto(server.url);
    await live();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('puts the script into the HTML page a browser asks for, with Content-Length raised by its size, and not into a HEAD answer or an API client\'s', async () => {
    const got = await request(server.url, { headers: BROWSER });
    assert.equal(got.status, 200);
    assert.match(got.text, /<script src="\/__servestack\/livereload\.js" async><\/script><\/body>/);
    assert.equal(Number(got.headers['content-length']), got.body.length);
    const head = await request(server.url, { method: 'HEAD', headers: BROWSER });
    const tag = '<script src="/__servestack/livereload.js" async></script>';
    assert.equal(Number(head.headers['content-length']), got.body.length - tag.length, 'HEAD: the app\'s own length');
    const css = await request(`${server.url}static/site.css`, { headers: BROWSER });
    assert.doesNotMatch(css.text, /livereload/);
    // curl, fetch() and API clients do not ask for text/html: they get the app's bytes.
    const plain = await request(server.url, { headers: { Accept: '*/*' } });
    assert.equal(plain.status, 200);
    assert.doesNotMatch(plain.text, /livereload/);
    assert.equal(plain.text, got.text.replace(tag, ''));
    assert.equal(Number(plain.headers['content-length']), plain.body.length);
  });

  it('refreshes the page once after a template edit, only when the new workers are ready: no error in between', async () => {
    const before = navigations.length;
    const completed = reloadsCompleted();
    write('templates/index.html', page('two'));
    await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'two', null, { timeout: 60_000 });
    // Old workers render the old template: "two" could only come from a new worker, after the reload.
    assert.ok(reloadsCompleted() > completed, 'the reload completed before the page showed the new template');
    assert.equal(navigations.length - before, 1, `one navigation: ${navigations.slice(before).join(', ')}`);
    assert.deepEqual(documentStatuses.filter((s) => s !== 200), [], 'every document answer was 200');
    assert.deepEqual(failedNavigations, []);
    await live();
  });

  it('swaps an edited stylesheet in place, without a navigation', async () => {
    const before = navigations.length;
    const color = () => tab.evaluate(() => window.getComputedStyle(document.getElementById('heading')).color);
    assert.equal(await color(), 'rgb(255, 0, 0)');
    write('static/site.css', 'h1 { color: rgb(0, 128, 0); }\n');
    await eventually(async () => (await color()) === 'rgb(0, 128, 0)', 20_000, 'the new colour');
    assert.equal(navigations.length, before, 'no navigation');
    assert.equal(await tab.evaluate(() => document.querySelectorAll('link[rel="stylesheet"]').length), 1, 'the old link is gone');
  });

  it("relays the page's console.error and uncaught errors to the server's log, tagged with the page and the device", async () => {
    await tab.evaluate(() => {
      console.error('boom from the page', { answer: 42 });
      setTimeout(() => { throw new Error('uncaught in a timer'); }, 0);
    });
    await server.waitFor(/\[browser\] error: \/ \(Headless Chrome \d+ on Linux\): boom from the page \{"answer":42\}/, 10_000);
    await server.waitFor(/\[browser\] error: \/ \(Headless Chrome \d+ on Linux\): Uncaught Error: uncaught in a timer/, 10_000);
  });

  it('shows an overlay naming app.py:line when the reload fails, while the old page still serves; the next good save clears it', async () => {
    const before = navigations.length;
    write('app.py', APP.replace('app = Flask(__name__)', 'app = Flask(__name__\n'));
    await tab.waitForSelector('#servestack-overlay', { timeout: 60_000 });
    const overlay: string = await tab.evaluate(() => document.getElementById('servestack-overlay').innerText);
    assert.match(overlay, /Reload failed: app\.py:\d+/);
    assert.match(overlay, /SyntaxError/);
    assert.equal(navigations.length, before, 'the page was not reloaded');
    const still = await request(server.url, { headers: BROWSER });
    assert.equal(still.status, 200, 'the old workers keep serving');
    assert.match(still.text, /<h1 id="heading">two<\/h1>/);
    // A page opened now sees the failure too.
    const second = await tab.context().newPage();
    await second.goto(server.url);
    await second.waitForSelector('#servestack-overlay', { timeout: 20_000 });
    await second.close();

    write('templates/index.html', page('three'));
    write('app.py', APP);
    await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'three' && !document.getElementById('servestack-overlay'), null, { timeout: 60_000 });
    assert.deepEqual(documentStatuses.filter((s) => s !== 200), [], 'every document answer was 200');
    await live();
  });

  it('loads a fix saved while a failing reload is still under way (the save is not dropped with the failed pass)', async () => {
    // The new worker has read this version once it prints; it fails 3 s later, so the fix
    // below is saved while this pass still runs.
    write('app.py', APP.replace('app = Flask(__name__)', 'print("broken version importing", flush=True)\ntime.sleep(3)\nraise RuntimeError("broken on purpose")\napp = Flask(__name__)'));
    await server.waitFor('broken version importing', 30_000);
    write('templates/index.html', page('fixed'));
    write('app.py', APP);
    await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'fixed', null, { timeout: 60_000 });
    assert.match(server.output(), /broken on purpose/, 'the first pass did fail');
    assert.equal(await tab.evaluate(() => !!document.getElementById('servestack-overlay')), false);
    assert.deepEqual(documentStatuses.filter((s) => s !== 200), [], 'every document answer was 200');
    await live();
  });

  it('puts nothing into pages with --no-live-reload, and leaves the reserved path to the routes', async () => {
    const plain = await serve(dir, ['--python', python!, '--no-live-reload']);
    try {
      const got = await eventually(async () => {
        const r = await request(plain.url, { headers: BROWSER });
        return r.status === 200 ? r : undefined;
      }, 30_000, 'the page');
      assert.doesNotMatch(got.text, /livereload/);
      assert.equal(Number(got.headers['content-length']), got.body.length);
      assert.equal((await request(`${plain.url}__servestack/livereload.js`)).status, 404, 'Flask answers it: no such route');
    } finally {
      await plain.stop();
    }
  });

  it('reconnects after the server restarts and reloads the page once it is back', async () => {
    const port = server.port;
    await server.stop();
    await tab.waitForFunction(() => window.__servestackLiveReload?.state === 'closed', null, { timeout: 20_000 });
    write('templates/index.html', page('after restart'));
    const before = navigations.length;
    server = await serve(dir, ['--python', python!, '--port', String(port)], { BOOT_DELAY: '1' });
    await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'after restart', null, { timeout: 60_000 }).catch(async (e: Error) => { console.log(server.output(), await tab.evaluate(() => JSON.stringify(window.__servestackLiveReload))); throw e; });
    assert.equal(navigations.length - before, 1, 'one reload');
    assert.deepEqual(documentStatuses.filter((s) => s !== 200), [], 'every document answer was 200');
    assert.deepEqual(failedNavigations, []);
    assert.equal(await heading(), 'after restart');
    assert.ok(readFileSync(path.join(dir, 'templates/index.html'), 'utf8').includes('after restart'));
  });
});
