// A config change against the real server (`node dist/cli.js serve`, a real Python worker):
// a restart-only field is reported as needing a restart while the rest applies and the
// server keeps its port; live limits take effect (queueSize, headerTimeout, maxHeaderSize);
// a change that cannot be built leaves the old config serving whole. The app's /hold
// waits for a gate file, so a worker is busy exactly as long as the test wants.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectControl, type ControlClient } from '../../server/control/client';
import { readServerState } from '../../server/control/stateFile';
import type { ControlEvent } from '../../server/protocol';
import { eventually, findPython, request, serve, tempDir, type ServeProcess } from './harness';

const PYTHON = findPython();
const TEST_TIMEOUT = 60_000;

const APP = `import os, time

def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/hold':
        # Bounded: a test that forgets the gate never leaves a worker busy for long.
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(os.path.dirname(__file__), 'gate')) and time.time() < deadline:
            time.sleep(0.02)
    body = ('%s %d' % (path, os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`;

function configText(extra: { limits?: Record<string, unknown>; listen?: string; python?: string; routes?: unknown[] } = {}): string {
  const lines = ['{'];
  if (extra.listen) lines.push(`  "listen": "${extra.listen}",`);
  lines.push(
    '  "pools": {',
    `    "web": { "app": "app:app", "workers": 1, "threads": 1, "python": ${JSON.stringify(extra.python ?? PYTHON)} }`,
    '  },',
    `  "routes": ${JSON.stringify(extra.routes ?? [{ path: '/', pool: 'web' }])},`,
    `  "limits": ${JSON.stringify({ headerTimeout: '10m', ...extra.limits })}`,
    '}',
    '',
  );
  return lines.join('\n');
}

/** What an editor does on save: write a temporary file, rename it over the original. */
function saveLikeAnEditor(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** One raw request on a new connection; resolves with the status line, or how the connection ended. */
function rawRequest(port: number, text: string, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (got += c));
    socket.on('error', reject);
    socket.on('close', () => resolve(got.split('\r\n')[0] || 'closed with no answer'));
    socket.write(text);
    if (opts.end !== false) socket.on('data', () => socket.end());
    socket.setTimeout(30_000, () => socket.destroy());
  });
}

describe('applying a config change to a running server', { skip: PYTHON ? false : 'no python3 found', timeout: 6 * TEST_TIMEOUT }, () => {
  let dir: string;
  let file: string;
  let server: ServeProcess;
  let client: ControlClient;
  let queueDepth = 0;
  const configEvents: ControlEvent[] = [];

  const apply = async (text: string): Promise<Extract<ControlEvent, { type: 'config' }>> => {
    const seen = configEvents.length;
    saveLikeAnEditor(file, text);
    return eventually(() => configEvents.slice(seen).find((e): e is Extract<ControlEvent, { type: 'config' }> => e.type === 'config'), 15_000, 'the config event');
  };
  const inFlight = async (): Promise<number> => (await client.request({ type: 'status' })).workers.reduce((n, w) => n + w.inFlight, 0);
  const workerPids = async (): Promise<number[]> => (await client.request({ type: 'status' })).workers.filter((w) => w.state !== 'exited').map((w) => w.pid!).sort();

  before(async () => {
    dir = tempDir();
    file = path.join(dir, 'servestack.json');
    fs.writeFileSync(path.join(dir, 'app.py'), APP);
    fs.mkdirSync(path.join(dir, 'static'));
    fs.writeFileSync(path.join(dir, 'static', 'x.txt'), 'static x\n');
    fs.writeFileSync(file, configText());
    server = await serve(dir);
    const state = readServerState(dir, { XDG_RUNTIME_DIR: server.runtimeDir });
    assert.ok(state && !state.stale, 'no state file for the server');
    client = await connectControl({ port: state.controlPort, token: state.token });
    client.onEvent((e) => {
      if (e.type === 'config') configEvents.push(e);
      if (e.type === 'metrics') queueDepth = e.metrics.pools.web?.queueDepth ?? 0;
    });
    await eventually(async () => (await client.request({ type: 'status' })).workers.some((w) => w.state === 'idle'), 20_000, 'a ready worker');
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports a new "listen" as needing a restart, applies the rest, and keeps serving on its port', { timeout: TEST_TIMEOUT }, async () => {
    const text = configText({ listen: '[::1]:8080', routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }] });
    const event = await apply(text);
    assert.equal(event.applied, true, JSON.stringify(event.diagnostics));
    assert.deepEqual(
      event.restartNeeded?.map((r) => [r.field, r.file, r.line]),
      [['listen', file, 2]],
    );
    // --port 0 (the harness's) pins the port; the host comes from the file.
    assert.equal(event.restartNeeded![0].wanted, '::1 on any free port');
    await server.waitFor(/"listen" changed to ::1 on any free port \(servestack\.json:2\); restart the server to apply it \(it keeps http:\/\/127\.0\.0\.1:\d+\/\)/);
    await server.waitFor(/applied: 2 routes, 1 pool; not applied until a restart: listen\n/);
    // Same port, old host, and the new route is live.
    assert.equal((await request(`${server.url}static/x.txt`)).text, 'static x\n');
    assert.match((await request(server.url)).text, /^\/ \d+$/);
    assert.equal((await client.request({ type: 'status' })).server.url, server.url);
  });

  it('leaves the running config serving whole when the new one cannot be built', { timeout: TEST_TIMEOUT }, async () => {
    assert.equal((await apply(configText())).applied, true);
    assert.match((await request(`${server.url}static/x.txt`)).text, /^\/static\/x\.txt \d+$/, 'the app answers /static/ again');
    const pids = await workerPids();
    const routesBefore = (await client.request({ type: 'status' })).routes;

    // The new route builds; the pool's interpreter cannot be started. Nothing may change.
    const text = configText({ python: 'python3-not-on-this-path', routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }], limits: { queueSize: 1 } });
    const event = await apply(text);
    assert.equal(event.applied, false);
    const problem = event.diagnostics.find((d) => d.code === 'PYTHON_NOT_FOUND');
    assert.ok(problem, JSON.stringify(event.diagnostics));
    assert.equal(problem.line, text.split('\n').findIndex((l) => l.includes('python3-not-on-this-path')) + 1);
    assert.match(problem.message, /"python3-not-on-this-path" was not found on PATH; set "python"/);
    await server.waitFor(new RegExp(`servestack\\.json:${problem.line}:\\d+: error: pool "web": the interpreter "python3-not-on-this-path" was not found on PATH.*\\[PYTHON_NOT_FOUND\\]`));
    await server.waitFor('the new config could not be built; the running config keeps serving');

    assert.deepEqual((await client.request({ type: 'status' })).routes, routesBefore);
    const r = await request(`${server.url}static/x.txt`);
    assert.match(r.text, /^\/static\/x\.txt \d+$/, 'the route that built fine was not swapped in: the app answers /static/');
    assert.deepEqual(await workerPids(), pids, 'the pool was not reloaded');
    assert.match((await request(server.url)).text, new RegExp(`^/ ${pids[0]}$`));
  });

  it('applies a lowered and a raised queueSize to the next request that would wait', { timeout: TEST_TIMEOUT }, async () => {
    const gate = path.join(dir, 'gate');
    fs.rmSync(gate, { force: true });
    const event = await apply(configText({ limits: { queueSize: 1 } }));
    assert.equal(event.applied, true, JSON.stringify(event.diagnostics));
    await server.waitFor('limits.queueSize 64 → 1');
    const holds: Promise<{ status: number }>[] = [];
    try {
      // Fill the worker (what it runs and may hold), then the queue, one request at a time.
      for (;;) {
        holds.push(request(`${server.url}hold`));
        const sent = holds.length;
        await eventually(async () => (await inFlight()) + queueDepth === sent, 15_000, `request ${sent} taken`);
        if (queueDepth === 1) break;
        assert.ok(sent < 10, 'the queue never filled');
      }
      const over = await request(`${server.url}hold`);
      assert.equal(over.status, 503, over.text);

      const raised = await apply(configText({ limits: { queueSize: 2 } }));
      assert.equal(raised.applied, true);
      holds.push(request(`${server.url}hold`));
      await eventually(() => queueDepth === 2, 15_000, 'a second request queued under the raised bound');
    } finally {
      fs.writeFileSync(gate, '');
    }
    const statuses = (await Promise.all(holds)).map((r) => r.status);
    assert.deepEqual(statuses, statuses.map(() => 200));
    fs.rmSync(gate, { force: true });
  });

  it('applies a lowered headerTimeout to a client that is sending its head', { timeout: TEST_TIMEOUT }, async () => {
    const event = await apply(configText({ limits: { headerTimeout: '1s' } }));
    assert.equal(event.applied, true, JSON.stringify(event.diagnostics));
    await server.waitFor('limits.headerTimeout 600000 → 1000');
    // The config this started from allows 10 minutes: only the new limit ends this within the test.
    const status = await rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n', { end: false });
    assert.equal(status, 'HTTP/1.1 408 Request Timeout');
  });

  it('applies a lowered maxHeaderSize to new connections', { timeout: TEST_TIMEOUT }, async () => {
    const head = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(4000)}\r\nConnection: close\r\n\r\n`;
    assert.equal(await rawRequest(server.port, head), 'HTTP/1.1 200 OK');
    const event = await apply(configText({ limits: { maxHeaderSize: '2k' } }));
    assert.equal(event.applied, true, JSON.stringify(event.diagnostics));
    await server.waitFor(/limits\.maxHeaderSize \d+ → 2048 \(for new connections\)/);
    assert.equal(await rawRequest(server.port, head), 'HTTP/1.1 431 Request Header Fields Too Large');
    assert.equal(await rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), 'HTTP/1.1 200 OK');
  });
});
