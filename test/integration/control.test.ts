// The control channel against the real server (`node dist/cli.js serve`, real Python
// workers, examples/hello copied to a folder with a hostile name): the state file, every
// CLI verb against a running server and against none, applyConfig with a good and a bad
// config, and editing servestack.json on disk under load with zero failed requests.
// Every process started here is stopped here; the state directory is private to the run.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectControl, type ControlClient } from '../../server/control/client';
import { readServerState, stateFilePath, writeServerState, type ReadServerState } from '../../server/control/stateFile';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const EXAMPLE = path.join(ROOT, 'examples', 'hello');
const TEST_TIMEOUT = 60_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node dist/cli.js ARGS` to its end (bounded). */
function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, windowsHide: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`servestack ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stop a process we started: SIGTERM, then SIGKILL after a grace. */
async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function makeFolder(tmp: string, name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(EXAMPLE, dir, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  return dir;
}

/** What an editor does on save: write a temporary file, rename it over the original. */
function saveLikeAnEditor(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}


const CONFIG_WITH_ASSETS = (base: string): string =>
  base.replace('"routes": [', '"routes": [\n    { "path": "/assets/", "static": "static" }, // added while serving');

describe('control against the real server', { timeout: 5 * TEST_TIMEOUT }, () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;

  before(() => {
    assert.ok(fs.existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-control-'));
    env = { ...process.env, XDG_RUNTIME_DIR: path.join(tmp, 'runtime'), LOCALAPPDATA: path.join(tmp, 'local') };
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('with no server running', () => {
    it('every verb says no server runs, names the command to start one, and exits 1', { timeout: TEST_TIMEOUT }, async () => {
      const dir = makeFolder(tmp, 'idle ☃');
      for (const verb of [['status'], ['scale', '2'], ['reload'], ['logs'], ['stop']]) {
        const r = await runCli([...verb, '--dir', dir], env);
        assert.equal(r.code, 1, verb.join(' '));
        assert.match(r.stderr, new RegExp(`no ServeStack server runs for ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; start one with \`servestack serve "${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\``));
      }
    });

    it('removes a stale state file (its server was killed) and says so', { timeout: TEST_TIMEOUT }, async () => {
      const dir = makeFolder(tmp, 'stale');
      const gone = spawn(process.execPath, ['-e', '0'], { windowsHide: true });
      await new Promise((r) => gone.once('exit', r));
      writeServerState(dir, { pid: gone.pid!, dir, url: 'http://127.0.0.1:1', controlPort: 1, token: 'a'.repeat(64), startedAt: Date.now(), version: '0' }, env);
      const r = await runCli(['status', '--dir', dir], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /removed a stale state file/);
      assert.equal(fs.existsSync(stateFilePath(dir, env)), false);
    });
  });

  describe('with a server running', () => {
    let dir: string;
    let configFile: string;
    let server: ChildProcess;
    let output = '';
    let state: ReadServerState;
    let client: ControlClient | undefined;
    let baseUrl: string;

    before(async () => {
      dir = makeFolder(tmp, 'with space ☃');
      configFile = path.join(dir, 'servestack.json');
      server = spawn(process.execPath, [CLI, 'serve', dir, '--port', '0'], { env, windowsHide: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (c: string): void => {
        output = (output + c).slice(-200_000);
      };
      server.stdout!.setEncoding('utf8').on('data', keep);
      server.stderr!.setEncoding('utf8').on('data', keep);
      state = await waitFor('the state file', () => {
        if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}):\n${output}`);
        const s = readServerState(dir, env);
        return s && !s.stale ? s : undefined;
      });
      baseUrl = state.url.replace(/\/$/, '');
      client = await connectControl({ port: state.controlPort, token: state.token });
      await waitFor('two idle workers', async () => {
        const s = await client!.request({ type: 'status' });
        return s.workers.filter((w) => w.state === 'idle').length === 2 ? true : undefined;
      });
    });

    after(async () => {
      await client?.close();
      if (server) await stopChild(server);
    });

    it('writes the state file 0600 in a 0700 directory, naming the server process and a 64-hex token', { skip: process.platform === 'win32' }, () => {
      assert.equal(fs.statSync(state.file).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.dirname(state.file)).mode & 0o777, 0o700);
      assert.equal(state.pid, server.pid);
      assert.match(state.token, /^[0-9a-f]{64}$/);
      assert.match(state.url, /^http:\/\/127\.0\.0\.1:\d+/);
    });

    it('status prints the pool and its workers', { timeout: TEST_TIMEOUT }, async () => {
      const r = await runCli(['status', '--dir', dir], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /POOL +KIND +WORKERS +STATE +APP\nweb +python +2\/2 +running +app:application/);
      assert.match(r.stdout, /ID +POOL +PID +STATE +REQUESTS +IN-FLIGHT +MEMORY +UPTIME/);
      assert.equal(r.stdout.split('\n').filter((l) => /^\d+ +web +\d+ +idle/.test(l)).length, 2);
    });

    it('scale 3 brings a third worker, scale web 2 takes it away', { timeout: TEST_TIMEOUT }, async () => {
      const up = await runCli(['scale', '3', '--dir', dir], env);
      assert.equal(up.code, 0, up.stderr);
      await waitFor('three live workers', async () => {
        const s = await client!.request({ type: 'status' });
        return s.workers.filter((w) => w.state === 'idle' || w.state === 'busy').length === 3 ? true : undefined;
      });
      const down = await runCli(['scale', 'web', '2', '--dir', dir], env);
      assert.equal(down.code, 0, down.stderr);
      await waitFor('two live workers', async () => {
        const s = await client!.request({ type: 'status' });
        return s.workers.filter((w) => w.state !== 'exited').length === 2 ? true : undefined;
      });
    });

    it('scale of a pool that does not exist fails with the server\'s reason', { timeout: TEST_TIMEOUT }, async () => {
      const r = await runCli(['scale', 'api', '2', '--dir', dir], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /CONTROL_UNKNOWN_POOL/);
    });

    it('reload replaces every worker with a new generation', { timeout: TEST_TIMEOUT }, async () => {
      const before = (await client!.request({ type: 'status' })).workers.map((w) => w.id);
      const r = await runCli(['reload', '--dir', dir], env);
      assert.equal(r.code, 0, r.stderr);
      const after = (await client!.request({ type: 'status' })).workers.filter((w) => w.state !== 'exited');
      assert.equal(after.length, 2);
      for (const w of after) assert.ok(!before.includes(w.id), `worker ${w.id} survived the reload`);
      assert.ok(after.every((w) => w.generation > 1));
    });

    it('restartWorker through the channel replaces that worker', { timeout: TEST_TIMEOUT }, async () => {
      const [first] = (await client!.request({ type: 'status' })).workers;
      await client!.request({ type: 'restartWorker', worker: first.id });
      await waitFor('the replacement', async () => {
        const s = await client!.request({ type: 'status' });
        const live = s.workers.filter((w) => w.state === 'idle');
        return live.length === 2 && !live.some((w) => w.id === first.id) ? true : undefined;
      });
    });

    it('logs prints recent lines, including workers becoming ready', { timeout: TEST_TIMEOUT }, async () => {
      const r = await runCli(['logs', '-n', '50', '--dir', dir], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /worker \d+ ready/);
    });

    it('logs -f follows new lines until Ctrl-C', { timeout: TEST_TIMEOUT, skip: process.platform === 'win32' }, async () => {
      const child = spawn(process.execPath, [CLI, 'logs', '-f', '-n', '1', '--dir', dir], { env, windowsHide: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      try {
        await waitFor('the recent line', () => (out.length > 0 ? true : undefined));
        const marker = `/api/info?follow-${Date.now()}`;
        await waitFor('the access line of a new request', async () => {
          await (await fetch(`${baseUrl}${marker}`)).text();
          return out.includes(marker) ? true : undefined;
        });
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        child.kill('SIGINT');
        assert.equal(await exited, 0);
      } finally {
        await stopChild(child, 2000);
      }
    });

    it('applyConfig applies a good config and refuses a bad one, which changes nothing', { timeout: TEST_TIMEOUT }, async () => {
      const base = fs.readFileSync(configFile, 'utf8');
      assert.equal((await fetch(`${baseUrl}/assets/style.css`)).status, 404); // the app's own 404
      const good = await client!.request({ type: 'applyConfig', text: CONFIG_WITH_ASSETS(base) });
      assert.equal(good.applied, true, JSON.stringify(good.diagnostics));
      assert.equal((await fetch(`${baseUrl}/assets/style.css`)).status, 200);
      const routesBefore = (await client!.request({ type: 'status' })).routes;

      const bad = await client!.request({ type: 'applyConfig', text: base.replace('"pool": "web"', '"pool": "wbe"') });
      assert.equal(bad.applied, false);
      assert.ok(bad.diagnostics.some((d) => d.severity === 'error'), 'no error diagnostics for a route to a missing pool');
      const broken = await client!.request({ type: 'applyConfig', text: '{ "routes": [ ' });
      assert.equal(broken.applied, false);
      assert.deepEqual((await client!.request({ type: 'status' })).routes, routesBefore);
      assert.equal((await fetch(`${baseUrl}/assets/style.css`)).status, 200);
      assert.equal((await fetch(`${baseUrl}/`)).status, 200);

      const back = await client!.request({ type: 'applyConfig', text: base });
      assert.equal(back.applied, true);
      assert.equal((await fetch(`${baseUrl}/assets/style.css`)).status, 404);
    });

    it('an edit of servestack.json on disk changes the routes under load with zero failed requests', { timeout: TEST_TIMEOUT }, async () => {
      const base = fs.readFileSync(configFile, 'utf8');
      const applied = client!.waitForEvent((e) => e.type === 'config' && e.applied);
      const results: { path: string; status: number; startedAt: number; error?: string }[] = [];
      const paths = ['/', '/api/info', '/static/style.css', '/assets/style.css'];
      const total = 300;
      const spanMs = 3000;
      const t0 = Date.now();
      let appliedAt = Infinity;
      void applied.then(() => (appliedAt = Date.now()));
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        if (i === total / 3) saveLikeAnEditor(configFile, CONFIG_WITH_ASSETS(base));
        const p = paths[i % paths.length];
        const startedAt = Date.now();
        inflight.push(
          fetch(`${baseUrl}${p}`)
            .then(async (res) => {
              await res.arrayBuffer();
              results.push({ path: p, status: res.status, startedAt });
            })
            .catch((err: Error) => {
              results.push({ path: p, status: 0, startedAt, error: err.message });
            }),
        );
        const due = t0 + ((i + 1) * spanMs) / total;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await Promise.all(inflight);
      await applied;
      assert.equal(results.length, total);
      const failed = results.filter((r) => r.status === 0 || r.status >= 500 || (r.path !== '/assets/style.css' && r.status !== 200));
      assert.deepEqual(failed, [], `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
      const assetsAfter = results.filter((r) => r.path === '/assets/style.css' && r.startedAt > appliedAt);
      assert.ok(assetsAfter.length > 0, 'no request after the change was applied');
      assert.ok(assetsAfter.every((r) => r.status === 200), `the new route did not take effect: ${JSON.stringify(results.filter((r) => r.path === '/assets/style.css').map((r) => [r.startedAt - t0, r.status]))} applied at ${appliedAt - t0}`);
      const routes = (await client!.request({ type: 'status' })).routes.map((r) => r.path);
      assert.ok(routes.includes('/assets/'));
    });

    it('a broken edit on disk keeps the running config and reports diagnostics', { timeout: TEST_TIMEOUT }, async () => {
      const refused = client!.waitForEvent((e) => e.type === 'config' && !e.applied);
      const routesBefore = (await client!.request({ type: 'status' })).routes;
      saveLikeAnEditor(configFile, '{ "routes": [ { "path": "/", "pool": ');
      const e = await refused;
      assert.ok(e.type === 'config' && e.diagnostics.length > 0);
      assert.deepEqual((await client!.request({ type: 'status' })).routes, routesBefore);
      assert.equal((await fetch(`${baseUrl}/`)).status, 200);
    });

    it('stop stops the server, waits until it has exited, and removes the state file', { timeout: TEST_TIMEOUT }, async () => {
      const pid = server.pid!;
      const r = await runCli(['stop', '--dir', dir], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`stopped the ServeStack server for .* \\(pid ${pid}\\)`));
      assert.equal(alive(pid), false);
      assert.equal(readServerState(dir, env), undefined);
      const again = await runCli(['status', '--dir', dir], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /no ServeStack server runs/);
    });
  });
});
