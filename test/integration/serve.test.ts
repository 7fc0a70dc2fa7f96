// `servestack serve` end to end: the real CLI, real Python workers, real HTTP on 127.0.0.1.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, eventually, findPython, pidAlive, pythonProcessesIn, request, serve, tempCopy, tempDir, type ServeProcess } from './harness';

const python = findPython();
const HELLO = path.join(ROOT, 'examples', 'hello');

function json(reply: { text: string }): Record<string, unknown> {
  return JSON.parse(reply.text) as Record<string, unknown>;
}

describe('serve: the hello example with two workers', { skip: python ? false : 'no python3 found' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempCopy(HELLO);
    server = await serve(dir, ['--python', python!]);
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET / is answered by a Python worker', async () => {
    const reply = await request(server.url);
    assert.equal(reply.status, 200);
    assert.match(reply.text, /came from Python worker pid \d+/);
    assert.match(String(reply.headers['content-type']), /text\/html/);
  });

  test('two workers answer with two different PIDs', async () => {
    const pids = new Set<number>();
    await eventually(async () => {
      // Two requests at once land on two idle workers.
      const replies = await Promise.all([request(server.url + 'api/sleep?s=0.2'), request(server.url + 'api/sleep?s=0.2')]);
      for (const r of replies) pids.add(json(r).pid as number);
      return pids.size === 2;
    }, 10000, 'two distinct worker pids');
    assert.equal(pids.size, 2);
  });

  test('a static file is served by the proxy and never reaches Python', async () => {
    const before = await request(server.url + 'api/info');
    const pid = json(before).pid;
    for (let i = 0; i < 5; i++) {
      const css = await request(server.url + 'static/style.css');
      assert.equal(css.status, 200);
      assert.match(String(css.headers['content-type']), /text\/css/);
    }
    // The access log names no worker for static files, and a worker for the app.
    const lines = await eventually(() => {
      const found = server.output().split('\n').filter((l) => l.includes('GET /static/style.css'));
      return found.length >= 5 ? found : undefined;
    }, 5000, 'five access lines');
    const size = readFileSync(path.join(dir, 'static', 'style.css')).length;
    assert.match(lines[0], new RegExp(`" 200 ${size} `), 'the access log counts the body bytes sent');
    for (const line of lines ?? []) assert.match(line, /w=-$/);
    const infoLine = server.output().split('\n').find((l) => l.includes('GET /api/info'));
    assert.match(infoLine ?? '', /w=web:\d+$/);
    assert.ok(pid);
  });

  test('a conditional GET with the ETag gets 304', async () => {
    const first = await request(server.url + 'static/style.css');
    const etag = String(first.headers.etag);
    assert.ok(etag.length > 2);
    const second = await request(server.url + 'static/style.css', { headers: { 'If-None-Match': etag } });
    assert.equal(second.status, 304);
    assert.equal(second.body.length, 0);
  });

  test('a Range request gets 206 with exactly those bytes', async () => {
    const full = await request(server.url + 'static/style.css');
    const part = await request(server.url + 'static/style.css', { headers: { Range: 'bytes=5-14' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 5-14/${full.body.length}`);
    assert.deepEqual(part.body, full.body.subarray(5, 15));
  });

  test('path traversal never leaves the static root', async () => {
    writeFileSync(path.join(dir, 'secret.txt'), 'TOP SECRET');
    for (const attempt of ['/static/../secret.txt', '/static/%2e%2e/secret.txt', '/static/%2e%2e%2fsecret.txt', '/static/..%5csecret.txt', '/static/%00', '/static/.%2e/secret.txt']) {
      const reply = await rawGet(server.port, attempt);
      assert.doesNotMatch(reply, /TOP SECRET/, `${attempt} leaked the file`);
    }
  });

  test('the app sees the client address in X-Forwarded-For, not a spoofed one', async () => {
    const reply = await request(server.url + 'api/info', { headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Real-IP': '6.6.6.6', Forwarded: 'for=6.6.6.6' } });
    const info = json(reply);
    assert.equal(info.forwarded_for, '127.0.0.1');
    assert.equal(info.real_ip, '127.0.0.1');
    assert.equal(info.forwarded_proto, 'http');
    assert.equal(info.forwarded_host, `127.0.0.1:${server.port}`);
    assert.equal(info.host, `127.0.0.1:${server.port}`);
    assert.equal(info.remote_addr, '127.0.0.1');
  });

  test('hop-by-hop headers do not cross the proxy', async () => {
    const reply = await rawGet(server.port, '/api/headers', 'Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nTE: trailers\r\nX-Normal: kept\r\n');
    const headers = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    assert.equal(headers['x-normal'], 'kept');
    assert.equal(headers['x-secret-hop'], undefined);
    assert.equal(headers.te, undefined);
    assert.equal(headers.connection, undefined);
  });

  test('a 5 MiB POST arrives intact', async () => {
    const payload = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
    const reply = await request(server.url + 'api/echo', { method: 'POST', body: payload, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(reply.status, 200);
    const echoed = json(reply);
    assert.equal(echoed.length, payload.length);
    assert.equal(echoed.sha256, createHash('sha256').update(payload).digest('hex'));
  });

  test('a chunked POST (no Content-Length) arrives intact', async () => {
    const parts = [Buffer.from('first,'), Buffer.alloc(200000, 1), Buffer.from(',last')];
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request(server.url + 'api/echo', { method: 'POST', agent: false, headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      for (const p of parts) req.write(p);
      req.end();
    });
    assert.equal(JSON.parse(reply).sha256, createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
  });

  test('a streamed response reaches the client in parts, as they are produced', async () => {
    const arrivals: { at: number; text: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      http.get(server.url + 'api/stream', { agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (text: string) => arrivals.push({ at: Date.now() / 1000, text }));
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.ok(arrivals.length >= 3, `expected several parts, got ${arrivals.length}`);
    const produced = arrivals.map((a) => a.text).join('').trim().split('\n').map((l) => Number(/at ([\d.]+)/.exec(l)![1]));
    // The first part reached the client before the app produced the last one.
    assert.ok(arrivals[0].at < produced[produced.length - 1], 'the first part arrived only after the whole body was produced');
  });

  test('a slow request on one worker does not delay a fast one', async () => {
    const order: string[] = [];
    const slow = request(server.url + 'api/sleep?s=2').then(() => order.push('slow'));
    await new Promise((r) => setTimeout(r, 200));
    const fast = request(server.url + 'api/info').then(() => order.push('fast'));
    await Promise.all([slow, fast]);
    assert.deepEqual(order, ['fast', 'slow']);
  });

  test('a worker killed with SIGKILL is replaced and service continues', async () => {
    const info = json(await request(server.url + 'api/info'));
    const victim = info.pid as number;
    process.kill(victim, 'SIGKILL');
    await server.waitFor(new RegExp(`\\(pid ${victim}\\) was killed by SIGKILL; starting a new one`));
    await eventually(async () => {
      const pids = new Set<number>();
      for (let i = 0; i < 6; i++) pids.add(json(await request(server.url + 'api/sleep?s=0')).pid as number);
      return !pids.has(victim);
    }, 10000, 'service from the replacement worker');
    const reply = await request(server.url);
    assert.equal(reply.status, 200);
  });
});

describe('serve: one worker, counted', { skip: python ? false : 'no python3 found' }, () => {
  test('static requests never reach the app: its request counter does not move', async () => {
    const dir = tempCopy(HELLO);
    const server = await serve(dir, ['--python', python!, '--workers', '1']);
    try {
      await server.waitFor(/worker \d+ ready/);
      const before = json(await request(server.url + 'api/info')).handled as number;
      for (let i = 0; i < 5; i++) assert.equal((await request(server.url + 'static/style.css')).status, 200);
      const after = json(await request(server.url + 'api/info')).handled as number;
      assert.equal(after - before, 1, 'only the second /api/info reached the app');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve: a folder without servestack.json', { skip: python ? false : 'no python3 found' }, () => {
  test('serves the detected app, and picks up a servestack.json written later', async () => {
    const dir = tempCopy(HELLO);
    rmSync(path.join(dir, 'servestack.json'));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/);
      assert.match(server.output(), /\[detected, no servestack\.json\]/);
      assert.equal((await request(server.url + 'api/info')).status, 200);
      assert.equal((await request(server.url + 'static/style.css')).status, 200);
      assert.equal((await request(server.url + 'assets/style.css')).status, 404);
      writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
        pools: { web: { app: 'app:application', workers: 1 } },
        routes: [{ path: '/assets/', static: 'static' }, { path: '/', pool: 'web' }],
      }));
      await eventually(async () => (await request(server.url + 'assets/style.css')).status === 200, 10000, 'the new route');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve: limits, timeouts and failures', { skip: python ? false : 'no python3 found' }, () => {
  test('a body over the limit gets 413 and never reaches the app', async () => {
    const dir = tempCopy(HELLO);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'app:application', workers: 1 } },
      routes: [{ path: '/api/echo', pool: 'web', maxBodySize: '1k' }, { path: '/', pool: 'web' }],
    }));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/);
      const before = json(await request(server.url + 'api/info')).handled as number;
      const reply = await request(server.url + 'api/echo', { method: 'POST', body: Buffer.alloc(4096) });
      assert.equal(reply.status, 413);
      const small = await request(server.url + 'api/echo', { method: 'POST', body: Buffer.alloc(512) });
      assert.equal(small.status, 200);
      const afterCount = json(await request(server.url + 'api/info')).handled as number;
      // info, the small echo, info: the 413 request is not among them.
      assert.equal(afterCount - before, 2);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a request that runs past the timeout gets 504 and its worker is replaced, its stack logged', async () => {
    const dir = tempCopy(HELLO);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'app:application', workers: 1, timeout: '1s' } },
      routes: [{ path: '/', pool: 'web' }],
    }));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/);
      const oldPid = json(await request(server.url + 'api/info')).pid;
      const reply = await request(server.url + 'api/sleep?s=30');
      assert.equal(reply.status, 504);
      await server.waitFor(/past the pool's timeout/);
      await server.waitFor(/File ".*app\.py", line \d+ in application/);
      const fresh = await eventually(async () => {
        const r = await request(server.url + 'api/info');
        return r.status === 200 ? json(r).pid : undefined;
      }, 15000, 'a replacement worker');
      assert.notEqual(fresh, oldPid);
      await eventually(() => !pidAlive(oldPid as number), 5000, 'the timed-out worker to be gone');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an app that cannot import logs one clear error, answers 503, and does not loop', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'app.py'), 'import os\nimport no_such_module_for_servestack\napp = None\n');
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', workers: 2 } }, routes: [{ path: '/', pool: 'web' }] }));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/could not be loaded: .*app\.py:2: ModuleNotFoundError/);
      const reply = await request(server.url);
      assert.equal(reply.status, 503);
      assert.match(reply.text, /no_such_module_for_servestack/);
      assert.ok(reply.headers['retry-after']);
      // Several seconds of back-off: still exactly one traceback in the log.
      await new Promise((r) => setTimeout(r, 4000));
      const tracebacks = server.output().split('Traceback (most recent call last)').length - 1;
      assert.equal(tracebacks, 1, server.output());
      const spawned = (server.output().match(/could not be loaded/g) ?? []).length;
      assert.equal(spawned, 1);
      // The fix is picked up by the next attempt.
      writeFileSync(path.join(dir, 'app.py'), 'def app(environ, start_response):\n    start_response("200 OK", [("Content-Type", "text/plain")])\n    return [b"fixed"]\n');
      const fixed = await eventually(async () => {
        const r = await request(server.url);
        return r.status === 200 ? r.text : undefined;
      }, 40000, 'the fixed app');
      assert.equal(fixed, 'fixed');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SIGTERM lets requests in flight complete, then stops every worker', async () => {
    const dir = tempCopy(HELLO);
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
      const inFlight = [request(server.url + 'api/sleep?s=1.5'), request(server.url + 'api/sleep?s=1')];
      await new Promise((r) => setTimeout(r, 300));
      const workers = pythonProcessesIn(dir);
      assert.equal(workers.length, 2);
      const code = await server.stop('SIGTERM');
      const replies = await Promise.all(inFlight);
      for (const r of replies) assert.equal(r.status, 200);
      assert.equal(code, 0);
      for (const pid of workers) assert.equal(pidAlive(pid), false);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kill -9 of the server leaves no Python process behind', async () => {
    const dir = tempCopy(HELLO);
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
      const workers = pythonProcessesIn(dir);
      assert.equal(workers.length, 2);
      await server.stop('SIGKILL');
      await eventually(() => workers.every((pid) => !pidAlive(pid)), 5000, 'workers to exit after their arbiter died');
      assert.deepEqual(pythonProcessesIn(dir), []);
    } finally {
      for (const pid of pythonProcessesIn(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kill -9 of the server ends a worker that is busy in a long request too', async () => {
    const dir = tempCopy(HELLO);
    const server = await serve(dir, ['--python', python!, '--workers', '1']);
    try {
      await server.waitFor(/worker \d+ ready/);
      const workers = pythonProcessesIn(dir);
      const pending = request(server.url + 'api/sleep?s=30').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      await server.stop('SIGKILL');
      await eventually(() => workers.every((pid) => !pidAlive(pid)), 5000, 'the busy worker to exit after its arbiter died');
      await pending;
    } finally {
      for (const pid of pythonProcessesIn(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a port in use is an error that names the port when the port is pinned', async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dir = tempCopy(HELLO);
    mkdirSync(path.join(dir, 'x'), { recursive: true });
    try {
      const { spawnSync } = await import('node:child_process');
      const run = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'serve', dir, '--port', String(port), '--python', python!], { timeout: 20000, encoding: 'utf8' });
      assert.equal(run.status, 1);
      assert.match(run.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(run.stderr, /PORT_IN_USE/);
      assert.deepEqual(pythonProcessesIn(dir), []);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A raw request, so the path reaches the server exactly as written. */
function rawGet(port: number, target: string, extraHeaders = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = require('node:net').connect(port, '127.0.0.1') as import('node:net').Socket;
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(10000, () => socket.destroy(new Error('raw request timed out')));
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extraHeaders}Connection: close\r\n\r\n`);
  });
}
