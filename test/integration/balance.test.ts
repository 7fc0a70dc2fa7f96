// Load-balanced proxy routes over real sockets: two small Node HTTP servers on 127.0.0.1
// behind one route, one of them stopped and started again, and requests that break
// mid-way to show what is retried on the other upstream and what is not.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { eventually, request, serve, tempDir, type ServeProcess } from './harness';

interface Backend {
  name: string;
  port: number;
  url: string;
  /** Requests seen, as "METHOD path". */
  seen: string[];
  /** Requests of /slow waiting for release(). */
  held: http.ServerResponse[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Answers its name; /break (any method) reads the request and then resets the connection; /slow waits until released. */
async function backend(name: string, options: { breaks?: boolean } = {}): Promise<Backend> {
  let server: http.Server | undefined;
  const b: Backend = {
    name,
    port: 0,
    url: '',
    seen: [],
    held: [],
    stop: async () => {
      const s = server;
      server = undefined;
      if (!s) return;
      for (const res of b.held.splice(0)) res.destroy();
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    start: async () => {
      const s = http.createServer((req, res) => {
        b.seen.push(`${req.method} ${req.url}`);
        req.resume();
        req.on('end', () => {
          if (req.url === '/break' && options.breaks !== false) return void req.socket.destroy();
          if (req.url === '/slow') return void b.held.push(res);
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end(name);
        });
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(b.port, '127.0.0.1', () => resolve());
      });
      server = s;
      b.port = (s.address() as AddressInfo).port;
      b.url = `http://127.0.0.1:${b.port}`;
    },
  };
  await b.start();
  return b;
}

describe('load-balanced proxy routes', () => {
  const running: Array<{ stop(): Promise<unknown> }> = [];
  const dirs: string[] = [];

  async function serveBalanced(backends: Backend[], route: Record<string, unknown> = {}): Promise<ServeProcess> {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ routes: [{ path: '/', proxy: backends.map((b) => b.url), ...route }] }));
    const server = await serve(dir);
    running.push(server);
    return server;
  }
  const text = async (server: ServeProcess, p: string, options: Parameters<typeof request>[1] = {}) => {
    const reply = await request(server.url + p.replace(/^\//, ''), options);
    return `${reply.status} ${reply.text}`;
  };

  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('round robin spreads requests; with one upstream killed every request still succeeds, and it is probed back in after it restarts', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    const server = await serveBalanced([a, b], { failTimeout: '1s' });
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await text(server, '/'));
    assert.deepEqual(first.sort(), ['200 a', '200 a', '200 b', '200 b']);

    await b.stop();
    const during = [];
    for (let i = 0; i < 10; i++) during.push(await text(server, '/'));
    assert.deepEqual(during, Array(10).fill('200 a'), 'the stopped upstream is failed over, then taken out');
    const seenByA = a.seen.length;

    await b.start(); // the same port
    // Once failTimeout is up, a request probes b, and b is back in the rotation.
    await eventually(async () => (await text(server, '/')) === '200 b', 15000, 'the restarted upstream to be probed back in');
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await text(server, '/'));
    assert.deepEqual(after.sort(), ['200 a', '200 a', '200 b', '200 b']);
    assert.ok(a.seen.length > seenByA);
    // The access log names the upstream that answered (NGINX's $upstream_addr).
    await server.waitFor(`w=127.0.0.1:${b.port}`);
  });

  test('a GET whose upstream resets the connection is retried on the other; a POST that reached one upstream is not', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    const server = await serveBalanced([a, b], { maxFails: 0 });
    // Both break on /break: a GET goes to both (once each), then fails with 502.
    const get = await text(server, '/break');
    assert.match(get, /^502 /);
    assert.deepEqual([a.seen.filter((s) => s === 'GET /break').length, b.seen.filter((s) => s === 'GET /break').length], [1, 1]);

    const post = await request(server.url + 'break', { method: 'POST', body: 'charge the card once', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(post.status, 502);
    const posts = [...a.seen, ...b.seen].filter((s) => s === 'POST /break');
    assert.equal(posts.length, 1, 'the POST reached one upstream and was not sent again');
  });

  test('a POST whose upstream refuses the connection goes to the other: it never left', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    const server = await serveBalanced([a, b]);
    await a.stop();
    for (let i = 0; i < 3; i++) {
      const reply = await request(server.url, { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain' } });
      assert.equal(`${reply.status} ${reply.text}`, '200 b');
    }
  });

  test('a POST streamed to its upstream (requestBuffering off) is not sent again: its body cannot be replayed', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    const server = await serveBalanced([a, b], { requestBuffering: false, maxFails: 0 });
    await a.stop();
    const replies = [];
    for (let i = 0; i < 2; i++) replies.push((await request(server.url, { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain' } })).status);
    assert.deepEqual(replies.sort(), [200, 502], 'round robin: one POST went to the stopped upstream and failed');
    assert.equal(b.seen.length, 1);
  });

  test('least-conn sends the next requests to the upstream with fewer in flight', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    const server = await serveBalanced([a, b], { balance: 'least-conn' });
    const slow = text(server, '/slow');
    const holder = await eventually(() => [a, b].find((x) => x.held.length === 1), 10000, 'the slow request to arrive');
    const other = holder === a ? b : a;
    for (let i = 0; i < 3; i++) assert.equal(await text(server, '/'), `200 ${other.name}`);
    const res = holder.held.pop()!;
    res.end('slow done');
    assert.equal(await slow, '200 slow done');
  });

  test('a WebSocket to a balanced route reaches a live upstream, also when its turn was the stopped one', async () => {
    const a = await backend('a');
    await a.stop();
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    running.push({ stop: () => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(() => resolve()); }) });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${String(data)}`)));
    const live = { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}` } as Backend;
    const server = await serveBalanced([a, live]);
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(server.url.replace(/^http/, 'ws'));
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send(`hello ${i}`));
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
      });
      assert.equal(echoed, `echo hello ${i}`);
      ws.close();
    }
  });

  test('with every upstream down the answer is a 502 page naming the upstream', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const server = await serveBalanced([a, b]);
    await a.stop();
    await b.stop();
    const reply = await request(server.url);
    assert.equal(reply.status, 502);
    assert.match(reply.text, /127\.0\.0\.1:\d+ could not be reached/);
  });
});
