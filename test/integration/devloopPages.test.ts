// The live-reload script on pages the proxy serves itself: a static route's HTML files and
// its own 502/503 pages. Over HTTP (the real server, `node dist/cli.js serve`, real Flask
// workers, loopback): what is injected, into which answers, with validators that match
// the bytes sent. In Debian's chromium (playwright-core): a static page refreshes after
// its file is edited, and a 503/502 page served while the app is broken turns into the
// app's page by itself once the app is fixed. Every process is ours and stopped here.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { eventually, findPython, request, ROOT, serve, tempDir, type ServeProcess } from './harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const python = findPython(['flask']);
const noFlask = !python ? 'no python3 with flask (apt-get install python3-flask)' : false;
const noBrowser = noFlask || (!existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : false);

/* eslint-disable @typescript-eslint/no-explicit-any -- the browser's objects cross as plain JSON */
declare const window: any;
declare const document: any;

const TAG = '<script src="/__servestack/livereload.js" async></script>';
const BROWSER = { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

const GOOD_APP = `from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return '<!doctype html><html><body><h1 id="heading">the app</h1></body></html>'


@app.route("/crash")
def crash():
    import os
    os._exit(3)
`;
const BROKEN_APP = GOOD_APP.replace('app = Flask(__name__)', 'app = Flask(__name__\n');

const SITE_PAGE = (heading: string) => `<!doctype html>
<html><head><title>site</title><link rel="stylesheet" href="site.css"></head>
<body><h1 id="heading">${heading}</h1></body></html>
`;

function project(app: string): string {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'site'));
  mkdirSync(path.join(dir, 'packed'));
  writeFileSync(path.join(dir, 'app.py'), app);
  writeFileSync(path.join(dir, 'site/index.html'), SITE_PAGE('one'));
  writeFileSync(path.join(dir, 'site/fragment.html'), '<p>a fragment, no body</p>\n');
  writeFileSync(path.join(dir, 'site/site.css'), 'h1 { color: rgb(255, 0, 0); }\n'.repeat(60));
  // A precompressed sibling: the page is served uncompressed with the tag rather than the .gz without it.
  writeFileSync(path.join(dir, 'packed/index.html'), SITE_PAGE('packed'));
  writeFileSync(path.join(dir, 'packed/index.html.gz'), gzipSync(SITE_PAGE('packed')));
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
    pools: { web: { app: 'app:app', workers: 1, reload: true } },
    routes: [
      { path: '/site/', static: 'site', compress: { minSize: 16 } },
      { path: '/packed/', static: 'packed' },
      { path: '/', pool: 'web' },
    ],
  }));
  return dir;
}

describe('live reload on static pages and the proxy\'s error pages, over HTTP', { skip: noFlask, timeout: 120_000 }, () => {
  let dir: string;
  let server: ServeProcess;

  before(async () => {
    dir = project(GOOD_APP);
    server = await serve(dir, ['--python', python!]);
    await server.waitFor(/worker \d+ ready/, 30_000);
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('puts the tag into a static index.html, with Content-Length and an ETag of its own; HEAD and 304 agree with it', async () => {
    const got = await request(`${server.url}site/`, { headers: BROWSER });
    assert.equal(got.status, 200);
    assert.equal(got.text, SITE_PAGE('one').replace('</body>', `${TAG}</body>`));
    assert.equal(Number(got.headers['content-length']), got.body.length);
    assert.equal(got.headers['accept-ranges'], undefined, 'ranges are of the file, not of this page');
    const etag = String(got.headers.etag);
    assert.match(etag, /^"[^"]+-lr[0-9a-f]{8}"$/);
    const head = await request(`${server.url}site/`, { method: 'HEAD', headers: BROWSER });
    assert.equal(head.headers['content-length'], got.headers['content-length']);
    assert.equal(head.headers.etag, etag);
    const again = await request(`${server.url}site/`, { headers: { ...BROWSER, 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, etag);
  });

  it('gives a client that does not ask for HTML (curl, fetch()) the file itself: its bytes, its length, its own ETag', async () => {
    const page = await request(`${server.url}site/`, { headers: BROWSER });
    const file = await request(`${server.url}site/`, { headers: { Accept: '*/*' } });
    assert.equal(file.status, 200);
    assert.equal(file.text, SITE_PAGE('one'));
    assert.equal(Number(file.headers['content-length']), Buffer.byteLength(SITE_PAGE('one')));
    assert.doesNotMatch(String(file.headers.etag), /-lr/);
    assert.notEqual(file.headers.etag, page.headers.etag);
  });

  it('leaves Range answers (206) with the file\'s own bytes and ETag; a stale If-Range gets the whole page with the tag', async () => {
    const file = Buffer.from(SITE_PAGE('one'));
    const part = await request(`${server.url}site/index.html`, { headers: { ...BROWSER, Range: 'bytes=0-14' } });
    assert.equal(part.status, 206);
    assert.equal(part.text, file.subarray(0, 15).toString());
    assert.equal(part.headers['content-range'], `bytes 0-14/${file.length}`);
    assert.doesNotMatch(String(part.headers.etag), /-lr/);
    const page = await request(`${server.url}site/index.html`, { headers: BROWSER });
    const stale = await request(`${server.url}site/index.html`, { headers: { ...BROWSER, Range: 'bytes=0-14', 'If-Range': String(page.headers.etag) } });
    assert.equal(stale.status, 200, 'If-Range needs a strong match with the file: the whole page');
    assert.equal(stale.text, page.text);
  });

  it('serves the tagged page uncompressed where it would compress or pick a .gz sibling; other files compress as before', async () => {
    const page = await request(`${server.url}site/`, { headers: { ...BROWSER, 'Accept-Encoding': 'gzip, br' } });
    assert.equal(page.headers['content-encoding'], undefined);
    assert.ok(page.text.includes(TAG));
    assert.equal(Number(page.headers['content-length']), page.body.length);
    const packed = await request(`${server.url}packed/`, { headers: { ...BROWSER, 'Accept-Encoding': 'gzip' } });
    assert.equal(packed.headers['content-encoding'], undefined);
    assert.equal(packed.text, SITE_PAGE('packed').replace('</body>', `${TAG}</body>`));
    assert.match(String(packed.headers.vary), /Accept-Encoding/);
    const css = await request(`${server.url}site/site.css`, { headers: { ...BROWSER, 'Accept-Encoding': 'gzip' } });
    assert.equal(css.headers['content-encoding'], 'gzip', 'a stylesheet is compressed as before');
    const plainCss = await request(`${server.url}site/site.css`, { headers: BROWSER });
    assert.doesNotMatch(plainCss.text, /livereload/);
    assert.doesNotMatch(String(plainCss.headers.etag), /-lr/);
  });

  it('leaves an HTML fragment (no </body>) as it is, under the file\'s ETag', async () => {
    const got = await request(`${server.url}site/fragment.html`, { headers: BROWSER });
    assert.equal(got.text, '<p>a fragment, no body</p>\n');
    assert.doesNotMatch(String(got.headers.etag), /-lr/);
  });

  it('a browser\'s 502 page (the worker died mid-request) gets the error-page tag; an API client\'s does not', async () => {
    const page = await request(`${server.url}crash`, { headers: BROWSER });
    assert.equal(page.status, 502);
    assert.match(page.text, /<script src="\/__servestack\/livereload\.js" async data-servestack-error="502" data-servestack-seen="\d+"><\/script><\/body>/);
    assert.equal(Number(page.headers['content-length']), page.body.length);
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/, 30_000); // its replacement
    const api = await request(`${server.url}crash`, { headers: { Accept: 'application/json' } });
    assert.equal(api.status, 502);
    assert.doesNotMatch(api.text, /livereload/);
    assert.equal(Number(api.headers['content-length']), api.body.length);
  });

  it('puts nothing into static pages or error pages with --no-live-reload', async () => {
    const plain = await serve(dir, ['--python', python!, '--no-live-reload']);
    try {
      const got = await eventually(async () => {
        const r = await request(`${plain.url}site/`, { headers: BROWSER });
        return r.status === 200 ? r : undefined;
      }, 30_000, 'the static page');
      assert.equal(got.text, SITE_PAGE('one'));
      assert.doesNotMatch(String(got.headers.etag), /-lr/);
      assert.equal(got.headers['accept-ranges'], 'bytes');
      await plain.waitFor(/worker \d+ ready/, 30_000);
      const crashed = await request(`${plain.url}crash`, { headers: BROWSER });
      assert.equal(crashed.status, 502);
      assert.doesNotMatch(crashed.text, /livereload/);
    } finally {
      await plain.stop();
    }
  });
});

describe('a broken app\'s 503 page over HTTP', { skip: noFlask, timeout: 120_000 }, () => {
  it('gets the tag for a browser, not for fetch(), with lengths that match', async () => {
    const dir = project(BROKEN_APP);
    const server = await serve(dir, ['--python', python!]);
    try {
      const page = await eventually(async () => {
        const r = await request(server.url, { headers: BROWSER });
        return r.status === 503 ? r : undefined;
      }, 30_000, 'a 503 while the app cannot load');
      assert.match(page.text, /SyntaxError/);
      assert.match(page.text, /data-servestack-error="503" data-servestack-seen="\d+"><\/script><\/body>/);
      assert.equal(Number(page.headers['content-length']), page.body.length);
      const api = await request(server.url, { headers: { Accept: '*/*' } });
      assert.equal(api.status, 503);
      assert.doesNotMatch(api.text, /livereload/);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('live reload on static pages and error pages, in chromium', { skip: noBrowser, timeout: 300_000 }, () => {
  let browser: any;

  before(async () => {
    const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
  });

  /** A tab that records the status of every document it loads. */
  async function openTab(url: string) {
    const tab = await (await browser.newContext()).newPage();
    const statuses: number[] = [];
    tab.on('response', (response: any) => { if (response.request().isNavigationRequest() && response.request().frame() === tab.mainFrame()) statuses.push(response.status()); });
    const first = await tab.goto(url);
    await tab.waitForFunction(() => window.__servestackLiveReload?.state === 'live', null, { timeout: 20_000 });
    return { tab, statuses, first: first.status() as number };
  }
  const heading = (tab: any) => tab.evaluate(() => document.getElementById('heading')?.textContent ?? null);

  it('a static index.html refreshes after its file is edited; its stylesheet swaps without a navigation; no worker restarts', async () => {
    const dir = project(GOOD_APP);
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/, 30_000);
      const { tab, statuses, first } = await openTab(`${server.url}site/`);
      assert.equal(first, 200);
      assert.equal(await heading(tab), 'one');
      writeFileSync(path.join(dir, 'site/index.html'), SITE_PAGE('two'));
      await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'two', null, { timeout: 20_000 });
      assert.deepEqual(statuses, [200, 200], 'one refresh, answered 200');
      await tab.waitForFunction(() => window.__servestackLiveReload?.state === 'live', null, { timeout: 20_000 });
      const color = () => tab.evaluate(() => window.getComputedStyle(document.getElementById('heading')).color);
      assert.equal(await color(), 'rgb(255, 0, 0)');
      writeFileSync(path.join(dir, 'site/site.css'), 'h1 { color: rgb(0, 0, 255); }\n');
      await eventually(async () => (await color()) === 'rgb(0, 0, 255)', 20_000, 'the new colour');
      assert.equal(statuses.length, 2, 'no navigation for the stylesheet');
      assert.doesNotMatch(server.output(), /reload(ing)? (pool|workers)|reload complete/i, 'a static file restarts no worker');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a 503 page served while app.py does not load turns into the app\'s page by itself once app.py is fixed', async () => {
    const dir = project(BROKEN_APP);
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/SyntaxError/, 30_000);
      const { tab, statuses, first } = await openTab(server.url);
      assert.equal(first, 503);
      assert.match(await tab.evaluate(() => document.body.innerText), /SyntaxError/);
      assert.equal(await tab.evaluate(() => !!document.getElementById('servestack-overlay')), false, 'the page states the error: no overlay on it');
      writeFileSync(path.join(dir, 'app.py'), GOOD_APP);
      await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'the app', null, { timeout: 60_000 });
      assert.equal(statuses.at(-1), 200);
      assert.ok(statuses.slice(1).every((s) => s === 200), `after the fix only the app's page loaded: ${statuses.join(', ')}`);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a 502 page (the worker died mid-request) waits, then shows the app\'s page once a fixed app.py is loaded', async () => {
    const dir = project(GOOD_APP);
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/, 30_000);
      const { tab, statuses, first } = await openTab(`${server.url}crash`);
      assert.equal(first, 502);
      // Its replacement worker is ready now: that alone must not reload the page (it would crash it again, in a loop).
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/, 30_000);
      await tab.waitForFunction(() => window.__servestackLiveReload?.state === 'live', null, { timeout: 20_000 });
      assert.deepEqual(statuses, [502]);
      writeFileSync(path.join(dir, 'app.py'), GOOD_APP.replace('    import os\n    os._exit(3)', '    return \'<!doctype html><html><body><h1 id="heading">crash fixed</h1></body></html>\''));
      await tab.waitForFunction(() => document.getElementById('heading')?.textContent === 'crash fixed', null, { timeout: 60_000 });
      assert.equal(statuses.at(-1), 200);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
