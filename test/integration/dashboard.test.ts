// The dashboard page and the request inspector in a real browser (Debian's chromium,
// driven by playwright-core) against the real server (`node dist/cli.js serve`, real
// Python workers running test/fixtures/apps/recorder, which writes down every request it
// gets). Loopback only; the load is a few hundred requests; every process is ours and
// stopped here. Screenshots go to test-artifacts/dashboard-browser/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { connectControl, type ControlClient } from '../../server/control/client';
import { CLI, eventually, findPython, request, ROOT, serve, tempCopy, type ServeProcess } from './harness';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'dashboard-browser');
const python = findPython();
const skip = !python ? 'no python3 found' : !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM} (apt-get install chromium)` : false;

/* eslint-disable @typescript-eslint/no-explicit-any -- the browser's objects cross as plain JSON */
type Page = any;
type Browser = any;
/** The page's global (the test's tsconfig has no DOM). */
declare const window: any;

interface Recorded { method: string; path: string; query: string; headers: Record<string, string>; body: string }

function recorded(dir: string): Recorded[] {
  const file = path.join(dir, 'requests.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded);
}

/** `count` GETs to `base + prefix + i`, `concurrency` at a time, on keep-alive connections; resolves with their statuses. */
async function load(base: string, prefix: string, count: number, concurrency: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses: number[] = [];
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(`${base}${prefix}${i}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => { statuses.push(res.statusCode ?? 0); resolve(); });
      });
      req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
    });
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await one(next++);
  }));
  agent.destroy();
  return statuses;
}

describe('dashboard: the page, live figures and the request inspector in chromium', { skip, timeout: 240_000 }, () => {
  let dir: string;
  let server: ServeProcess;
  let env: NodeJS.ProcessEnv;
  let dashboardUrl: string;
  let controlBase: string;
  let control: ControlClient;
  let browser: Browser;
  let page: Page;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = tempCopy(path.join(ROOT, 'test/fixtures/apps/recorder'));
    server = await serve(dir, ['--python', python!]);
    env = { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir };
    const printed = spawnSync(process.execPath, [CLI, 'dashboard', '--dir', dir, '--url'], { env, encoding: 'utf8', timeout: 10_000 });
    assert.equal(printed.status, 0, printed.stderr);
    dashboardUrl = printed.stdout.trim();
    assert.match(dashboardUrl, /^http:\/\/127\.0\.0\.1:\d+\/dashboard\/\?token=[0-9a-f]{64}$/);
    const u = new URL(dashboardUrl);
    controlBase = `${u.protocol}//${u.host}`;
    control = await connectControl({ port: Number(u.port), token: u.searchParams.get('token')! });
    await eventually(async () => (await control.request({ type: 'status' })).workers.filter((w) => w.state === 'idle').length === 2, 30_000, 'two idle workers');
    const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await control?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('servestack dashboard says so when no server runs for the folder, and exits 1', () => {
    const empty = tempCopy(path.join(ROOT, 'test/fixtures/apps/recorder'));
    try {
      const r = spawnSync(process.execPath, [CLI, 'dashboard', '--dir', empty, '--url'], { env, encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no ServeStack server runs for .*; start one with `servestack serve`/);
      assert.equal(r.stdout, '');
      const usage = spawnSync(process.execPath, [CLI, 'dashboard', '--bogus'], { env, encoding: 'utf8', timeout: 10_000 });
      assert.equal(usage.status, 2);
      assert.match(usage.stderr, /usage: servestack dashboard/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses the page, its files and its socket without the token (401), and with a wrong one', async () => {
    for (const p of ['/dashboard/', '/dashboard/dashboard.js', '/dashboard/dashboard.css']) {
      assert.equal((await request(controlBase + p)).status, 401, p);
    }
    assert.equal((await request(`${controlBase}/dashboard/?token=${'0'.repeat(64)}`)).status, 401);
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${controlBase.replace('http', 'ws')}/dashboard/control`, ['servestack.v1'], { headers: { Origin: controlBase } });
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => { resolve(101); ws.close(); });
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 401);
    const response = await page.goto(`${controlBase}/dashboard/`);
    assert.equal(response.status(), 401);
  });

  it('loads with the token (which leaves the address bar) and shows the worker PIDs the server reports', async () => {
    await page.goto(dashboardUrl);
    assert.equal(new URL(page.url()).search, '', 'the token is gone from the URL');
    await page.waitForSelector('#connection.live', { timeout: 10_000 });
    const pids = (await control.request({ type: 'status' })).workers.map((w) => String(w.pid)).sort();
    await eventually(async () => JSON.stringify((await page.locator('#workers td.pid').allInnerTexts()).sort()) === JSON.stringify(pids), 10_000, `PIDs ${pids} in the page`);
  });

  it('under a bounded load, the charts\' data and the recent requests update', async () => {
    // Six bursts (300 requests), each after the page got a new metrics sample, so the charts get several points.
    const samples = () => page.evaluate(() => (window as any).servestackDashboard.model.samples.length as number);
    const statuses: number[] = [];
    const bursts = [20, 40, 80, 60, 40, 60];
    for (let burst = 0; burst < bursts.length; burst++) {
      const seen = await samples();
      statuses.push(...(await load(server.url, `load/${burst}`, bursts[burst], 4)));
      await eventually(async () => (await samples()) > seen, 10_000, 'the next metrics sample');
    }
    assert.equal(statuses.filter((s) => s === 200).length, 300);
    // The status chart counts requests exactly (per second, by class); its 2xx series adds up to the load.
    const twoXx = () => page.evaluate(() => ((window as any).servestackDashboard.charts.status.plot?.data?.[1] ?? []).reduce((a: number, b: number | null) => a + (b ?? 0), 0));
    await eventually(async () => (await twoXx()) >= 300, 10_000, '300 2xx in the status chart');
    const rps = await page.evaluate(() => Math.max(...((window as any).servestackDashboard.charts.traffic.plot?.data?.[1] ?? [0])));
    assert.ok(rps > 0, `requests/s drawn: ${rps}`);
    const latency = await page.evaluate(() => ((window as any).servestackDashboard.charts.latency.plot?.data?.[3] ?? []).filter((v: number | null) => v !== null).length);
    assert.ok(latency > 0, 'p99 points drawn');
    await eventually(async () => (await page.locator('#requests tbody tr', { hasText: '/load/559' }).count()) === 1, 10_000, '/load/559 (the last one) in the recent requests');
    await page.fill('#filter', 'load/55');
    const filtered = await page.locator('#requests tbody td.path').allInnerTexts();
    assert.ok(filtered.length >= 11 && filtered.every((t: string) => t.includes('/load/55')), `filtered rows: ${filtered.length}`);
    await page.fill('#filter', '');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-under-load.png'), fullPage: true });
  });

  it('the scale button changes the worker count the server reports', async () => {
    await page.fill('#scale-input', '3');
    await page.click('#scale-button');
    await eventually(async () => {
      const s = await control.request({ type: 'status' });
      return s.pools[0].wanted === 3 && s.workers.filter((w) => w.state === 'idle' || w.state === 'busy').length === 3;
    }, 30_000, 'three workers up');
    await eventually(async () => (await page.locator('#workers tbody tr').count()) === 3, 10_000, 'three rows');
    await page.click('#scale-down');
    await eventually(async () => {
      const s = await control.request({ type: 'status' });
      return s.pools[0].wanted === 2 && s.workers.filter((w) => w.state !== 'exited').length === 2;
    }, 30_000, 'back to two workers');
  });

  it('a replayed request reaches the app again with the same method, path, headers and body; credentials stay masked until revealed', async () => {
    const body = JSON.stringify({ order: 42, note: 'snow ☃' });
    const sent = await request(`${server.url}submit/with%20space?x=1&y=two`, {
      method: 'POST',
      headers: { Authorization: 'Bearer tok-123456', Cookie: 'sid=cookie-abcdef', 'Content-Type': 'application/json', 'X-Custom': 'kept as is' },
      body,
    });
    assert.equal(sent.status, 200);
    const row = page.locator('#requests tbody tr', { hasText: '/submit/with%20space?x=1&y=two' }).first();
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    await page.waitForSelector('#inspector:not([hidden])');
    const inspector = page.locator('#inspector');
    const masked = await inspector.innerText();
    assert.ok(!masked.includes('tok-123456') && !masked.includes('cookie-abcdef') && !masked.includes('s3cr3t-cookie'), 'no credential is shown before Reveal');
    assert.equal(await page.locator('#request-headers tr[data-masked]').count(), 2, 'Authorization and Cookie masked');
    assert.equal(await page.locator('#response-headers tr[data-masked]').count(), 1, 'Set-Cookie masked');
    assert.match(await page.locator('#request-body').innerText(), /snow ☃/);
    assert.match(await page.locator('#request-logs').innerText(), /recorded POST \/submit\/with space/);
    await inspector.screenshot({ path: path.join(ARTIFACTS, 'inspector-masked.png') });

    await page.click('#reveal-button');
    await eventually(async () => (await inspector.innerText()).includes('Bearer tok-123456'), 5_000, 'Authorization revealed');
    assert.ok((await inspector.innerText()).includes('s3cr3t-cookie'));
    await page.click('#reveal-button');
    await eventually(async () => !(await inspector.innerText()).includes('Bearer tok-123456'), 5_000, 'masked again');

    const before = recorded(dir).filter((r) => r.path === '/submit/with space');
    assert.equal(before.length, 1);
    await page.click('#replay-button');
    await eventually(async () => (await page.locator('#replay-result').getAttribute('data-status')) === '200', 15_000, 'replay answered 200');
    const both = recorded(dir).filter((r) => r.path === '/submit/with space');
    assert.equal(both.length, 2, 'the app got the request a second time');
    const [original, replayed] = both;
    assert.equal(replayed.method, original.method);
    assert.equal(replayed.path, original.path);
    assert.equal(replayed.query, original.query);
    assert.deepEqual(replayed.headers, original.headers);
    assert.equal(replayed.body, body);
    assert.equal(replayed.headers.authorization, 'Bearer tok-123456');
    await eventually(async () => (await page.locator('#requests tbody tr', { hasText: 'replay of #' }).count()) >= 1, 10_000, 'the replay listed as one');

    // Edited: a new body; the masked Authorization left as shown goes out as it was.
    await page.click('#edit-button');
    await page.fill('#edit-body', '{"order":43}');
    await page.click('#edit-send');
    await eventually(() => recorded(dir).filter((r) => r.path === '/submit/with space').length === 3, 15_000, 'the edited replay reached the app');
    const edited = recorded(dir).filter((r) => r.path === '/submit/with space')[2];
    assert.equal(edited.body, '{"order":43}');
    assert.equal(edited.headers.authorization, 'Bearer tok-123456');
  });
});
