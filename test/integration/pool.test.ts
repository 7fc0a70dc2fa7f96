// Pool lifecycle with real Python workers: code reload, max-requests recycling, a
// broken save during reload, and the prefetch take-back.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { connectControl } from '../../server/control/client';
import { readServerState } from '../../server/control/stateFile';
import { eventually, findPython, request, serve, tempDir, type ServeProcess } from './harness';

const python = findPython();

function appSource(version: string): string {
  return [
    'import os, time',
    'def app(environ, start_response):',
    '    if environ["PATH_INFO"] == "/slow":',
    '        time.sleep(float(environ["QUERY_STRING"] or "1"))',
    `    body = ("${version} %d" % os.getpid()).encode()`,
    '    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])',
    '    return [body]',
    '',
  ].join('\n');
}

function writeApp(dir: string, config: object, version = 'v1'): void {
  writeFileSync(path.join(dir, 'app.py'), appSource(version));
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify(config));
}

/** Serves `app.py` with two workers in a temp folder, runs `fn`, then stops the server and removes the folder. */
async function withTwoWorkers(fn: (server: ServeProcess) => Promise<void>): Promise<void> {
  const dir = tempDir();
  writeApp(dir, { pools: { web: { app: 'app:app', workers: 2 } }, routes: [{ path: '/', pool: 'web' }] });
  const server = await serve(dir, ['--python', python!]);
  try {
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
    await fn(server);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bounded load on 127.0.0.1: `count` requests, `concurrency` at a time; returns the statuses. */
async function load(url: string, count: number, concurrency: number, seen: string[]): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      try {
        const r = await request(url);
        statuses.push(r.status);
        seen.push(r.text);
      } catch {
        statuses.push(0);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }));
  return statuses;
}

describe('pool lifecycle', { skip: python ? false : 'no python3 found' }, () => {
  test('"reload": true restarts workers on a .py save with zero failed requests', async () => {
    const dir = tempDir();
    writeApp(dir, { pools: { web: { app: 'app:app', workers: 2, reload: true } }, routes: [{ path: '/', pool: 'web' }] });
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
      const seen: string[] = [];
      const running = load(server.url, 400, 4, seen);
      await new Promise((r) => setTimeout(r, 300));
      writeFileSync(path.join(dir, 'app.py'), appSource('v2'));
      const statuses = await running;
      assert.deepEqual([...new Set(statuses)], [200], `statuses seen: ${[...new Set(statuses)]}`);
      await server.waitFor(/reload complete/);
      const after = await request(server.url);
      assert.match(after.text, /^v2 /);
      assert.ok(seen.some((t) => t.startsWith('v1')) && seen.some((t) => t.startsWith('v2')), 'the load ran across the reload');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a broken save keeps the old workers serving, logs the error once, and the fix reloads', async () => {
    const dir = tempDir();
    writeApp(dir, { pools: { web: { app: 'app:app', workers: 1, reload: true } }, routes: [{ path: '/', pool: 'web' }] });
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/);
      writeFileSync(path.join(dir, 'app.py'), 'def app(environ, start_response):\n    return [b"x"\n');
      await server.waitFor(/reload of pool 'web' stopped: .*SyntaxError/);
      const during = await request(server.url);
      assert.equal(during.status, 200);
      assert.match(during.text, /^v1 /);
      writeFileSync(path.join(dir, 'app.py'), appSource('v3'));
      const fixed = await eventually(async () => ((await request(server.url)).text.startsWith('v3') ? true : undefined), 15000, 'the fixed app');
      assert.ok(fixed);
      assert.equal(server.output().split('Traceback (most recent call last)').length - 1, 1);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('maxRequests replaces a worker after it served its share', async () => {
    const dir = tempDir();
    writeApp(dir, { pools: { web: { app: 'app:app', workers: 1, maxRequests: 5 } }, routes: [{ path: '/', pool: 'web' }] });
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready/);
      const pids = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const r = await request(server.url);
        assert.equal(r.status, 200);
        pids.add(r.text.split(' ')[1]);
      }
      assert.ok(pids.size >= 2, `pids: ${[...pids]}`);
      await server.waitFor(/served 5 requests \(maxRequests\); replacing it/);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a request prefetched behind a slow one is taken back by a worker that becomes idle', async () => {
    await withTwoWorkers(async (server) => {
      const order: string[] = [];
      // Both workers busy: one for 3 s, one for 0.5 s. The fast request waits behind one of them.
      const slow = request(server.url + 'slow?3').then(() => order.push('slow'));
      const medium = request(server.url + 'slow?0.5').then(() => order.push('medium'));
      await new Promise((r) => setTimeout(r, 150));
      const fast = request(server.url + 'fast').then(() => order.push('fast'));
      await Promise.all([slow, medium, fast]);
      // Whichever worker it was prefetched to, it ran when the medium one finished, not after the slow one.
      assert.deepEqual(order, ['medium', 'fast', 'slow']);
    });
  });
});

describe('pool state seen through the control channel', { skip: python ? false : 'no python3 found' }, () => {
  test('a hand-scaled count survives a config save that does not change "workers"; request counts stream', async () => {
    const dir = tempDir();
    writeApp(dir, { pools: { web: { app: 'app:app', workers: 1 } }, routes: [{ path: '/', pool: 'web' }] });
    const server = await serve(dir, ['--python', python!]);
    const state = readServerState(dir, { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir });
    assert.ok(state, 'the server wrote its state file');
    const client = await connectControl({ port: state.controlPort, token: state.token });
    try {
      await server.waitFor(/worker \d+ ready/);
      await client.request({ type: 'scale', pool: 'web', workers: 3 });
      await eventually(async () => (await client.request({ type: 'status' })).workers.filter((w) => w.state === 'idle').length === 3, 15000, '3 idle workers');
      // A save that changes a route but not the count keeps the 3.
      writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', workers: 1 } }, routes: [{ path: '/x/', pool: 'web' }, { path: '/', pool: 'web' }] }));
      await server.waitFor(/applied: 2 routes/);
      const after = await client.request({ type: 'status' });
      assert.equal(after.pools.find((p) => p.name === 'web')?.wanted, 3);
      // Counts move without a state change; the channel still tells.
      const counted = client.waitForEvent((e) => e.type === 'worker' && e.worker.requests >= 2, 10000);
      for (let i = 0; i < 6; i++) await request(server.url);
      const event = await counted;
      assert.equal(event.type, 'worker');
    } finally {
      await client.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('take-back under load', { skip: python ? false : 'no python3 found' }, () => {
  test('every request runs in the app exactly once, however often it is taken back', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'app.py'), [
      'import os, time',
      'LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran.log")',
      'def app(environ, start_response):',
      '    rid = environ.get("HTTP_X_ID", "?")',
      '    with open(LOG, "a") as f:',
      '        f.write(rid + "\\n")',
      '    if environ["PATH_INFO"] == "/slow":',
      '        time.sleep(0.05)',
      '    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])',
      '    return [b"ok"]',
      '',
    ].join('\n'));
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', workers: 2 } }, routes: [{ path: '/', pool: 'web' }] }));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
      let next = 0;
      const total = 600;
      // Four clients, one request in ten slow: the mix that makes free workers take requests back.
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < total) {
          const id = next++;
          const r = await request(server.url + (id % 10 === 3 ? 'slow' : 'fast'), { headers: { 'X-Id': String(id) } });
          assert.equal(r.status, 200);
        }
      }));
      const ran = (await import('node:fs')).readFileSync(path.join(dir, 'ran.log'), 'utf8').trim().split('\n');
      const counts = new Map<string, number>();
      for (const id of ran) counts.set(id, (counts.get(id) ?? 0) + 1);
      const repeated = [...counts].filter(([, n]) => n > 1);
      assert.deepEqual(repeated, [], `requests that ran more than once: ${repeated.slice(0, 5).map(([id, n]) => `${id}×${n}`).join(', ')}`);
      assert.equal(counts.size, total);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dispatch without head-of-line blocking', { skip: python ? false : 'no python3 found' }, () => {
  test('a fast request, while one worker runs a long request and the other is kept busy with short ones, is answered before the long one ends', async () => {
    await withTwoWorkers(async (server) => {
      const order: string[] = [];
      let longDone = false;
      const long = request(server.url + 'slow?3').then(() => {
        longDone = true;
        order.push('long');
    });
    await new Promise((r) => setTimeout(r, 100));
    // Three clients keep the other worker busy (and its prefetch slots full) with 50 ms requests.
    const busy = Array.from({ length: 3 }, async () => {
      while (!longDone) await request(server.url + 'slow?0.05');
    });
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 5; i++) {
      await request(server.url + 'fast');
      order.push('fast');
    }
    await Promise.all([long, ...busy]);
    assert.deepEqual(order, ['fast', 'fast', 'fast', 'fast', 'fast', 'long']);
    });
  });

  test('an ASGI pool given more requests than its workers run at once answers every one (it is never sent a Revoke it cannot act on)', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'asgi_app.py'), [
      'import asyncio, os',
      'async def app(scope, receive, send):',
      '    if scope["type"] != "http":',
      '        return',
      '    await asyncio.sleep(0.3)',
      '    body = str(os.getpid()).encode()',
      '    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})',
      '    await send({"type": "http.response.body", "body": body})',
      '',
    ].join('\n'));
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'asgi_app:app', interface: 'asgi', workers: 2 } },
      routes: [{ path: '/', pool: 'web' }],
      limits: { queueSize: 400 },
    }));
    const server = await serve(dir, ['--python', python!]);
    try {
      await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
      // 250 at once: more than the two workers' 100 slots each, so some wait in the pool.
      const replies = await Promise.all(Array.from({ length: 250 }, () => request(server.url + 'x')));
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
      assert.equal(new Set(replies.map((r) => r.text)).size, 2);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
