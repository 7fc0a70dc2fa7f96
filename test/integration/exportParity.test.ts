// Parity: one list of requests against `servestack serve`, then against the export of the
// same folder on real NGINX + Gunicorn, on the same loopback port. Status codes, bodies and
// the headers that matter must be equal; each difference the suite allows is one listed in
// DIFFERENCES (the export's README), and the suite checks both sides of it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import { DIFFERENCES } from '../../server/export/readme';
import { errorPageHtml } from '../../server/proxy/errorPages';
import { findPython, ROOT, request, serve, tempCopy, type Reply } from './harness';
import { exportTo, freePort, productionMissing, readLog, startGunicorn, startNginx, type Started } from './production';

const missing = productionMissing() ?? (findPython(['flask']) === '/usr/bin/python3' ? undefined : 'Flask is not importable by /usr/bin/python3 (Gunicorn\'s interpreter)');
if (missing) console.log(`# skipping the export parity suite: ${missing}`);

type Side = 'servestack' | 'nginx';
interface Observed {
  /** Must be deep-equal on both sides. */
  equal: unknown;
  /** Side-specific facts, checked by the probe's `own` against the documented difference. */
  own?: unknown;
}
interface Probe {
  name: string;
  run(port: number): Promise<Observed>;
  /** A documented difference: checks each side's own facts. */
  own?: { difference: RegExp; check(side: Side, own: unknown): void };
}

const MATTER = ['content-type', 'content-length', 'cache-control', 'accept-ranges', 'content-range', 'content-encoding', 'vary', 'location', 'retry-after', 'allow', 'x-content-type-options', 'last-modified'];

function sha(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

function matter(r: Reply, extra: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = { status: r.status };
  for (const name of [...MATTER, ...extra]) if (r.headers[name] !== undefined) out[name] = r.headers[name];
  return out;
}

function titleOf(html: string): string | undefined {
  return /<title>([^<]*)<\/title>/.exec(html)?.[1];
}

const get = (port: number, target: string, headers: Record<string, string> = {}, method = 'GET') =>
  request(`http://127.0.0.1:${port}${target}`, { method, headers });

const upload = randomBytes(2 * 1024 * 1024 + 17); // over NGINX's default client_max_body_size (1m)
const wsSeen: Array<{ url?: string; headers: http.IncomingHttpHeaders }> = [];

const probes: Probe[] = [
  {
    name: 'a static file: type, length, Cache-Control, validators',
    async run(port) {
      const r = await get(port, '/static/style.css');
      return { equal: { ...matter(r), body: sha(r.body), etag: typeof r.headers.etag }, own: r.headers.etag };
    },
    own: { difference: /ETag values/, check: (side, etag) => assert.match(String(etag), side === 'nginx' ? /^"[0-9a-f]+-[0-9a-f]+"$/ : /^"[0-9a-f]+-[A-Za-z0-9_-]+"$/) },
  },
  {
    name: 'HEAD of a static file',
    async run(port) {
      const r = await get(port, '/static/style.css', {}, 'HEAD');
      return { equal: { ...matter(r), body: r.body.length } };
    },
  },
  {
    name: '304 for the ETag each server gave, and for If-Modified-Since',
    async run(port) {
      const first = await get(port, '/static/style.css');
      const byEtag = await get(port, '/static/style.css', { 'If-None-Match': String(first.headers.etag) });
      const bySince = await get(port, '/static/style.css', { 'If-Modified-Since': String(first.headers['last-modified']) });
      return { equal: [matter(byEtag), byEtag.body.length, matter(bySince), bySince.body.length] };
    },
  },
  {
    name: 'a range: 206 with Content-Range, and 416 past the end',
    own: { difference: /416: NGINX answers with its own HTML page/, check: (side, type) => assert.match(String(type), side === 'nginx' ? /^text\/html/ : /^text\/plain/) },
    async run(port) {
      const r = await get(port, '/static/big.txt', { Range: 'bytes=100-1099' });
      const past = await get(port, '/static/big.txt', { Range: 'bytes=999999-' });
      return { equal: [{ ...matter(r), body: r.body.toString() }, past.status, past.headers['content-range']], own: past.headers['content-type'] };
    },
  },
  {
    name: 'a precompressed sibling for gzip, the file itself otherwise, Vary on both',
    async run(port) {
      const gz = await get(port, '/static/app.js', { 'Accept-Encoding': 'gzip' });
      const plain = await get(port, '/static/app.js');
      return { equal: [{ ...matter(gz), body: sha(gz.body) }, { ...matter(plain), body: sha(plain.body) }] };
    },
  },
  {
    name: 'dotfiles, missing files and other methods on a static route',
    async run(port) {
      const dot = await get(port, '/static/.env');
      const hidden = await get(port, '/static/.git/config');
      const none = await get(port, '/static/nope.css');
      const post = await get(port, '/static/style.css', {}, 'POST');
      return { equal: [dot, hidden, none, post].map((r) => ({ ...matter(r), body: r.text })) };
    },
  },
  {
    name: 'a folder: its index.html, and the slash redirect',
    async run(port) {
      const index = await get(port, '/static/sub/');
      const bare = await get(port, '/static/sub');
      return { equal: [{ ...matter(index), body: index.text }, { status: bare.status, location: bare.headers.location }] };
    },
  },
  {
    name: 'the trailing-slash redirect of a route, query kept',
    async run(port) {
      const r = await get(port, '/static?v=2');
      return { equal: { status: r.status, location: r.headers.location }, own: r.body.length };
    },
    own: { difference: /trailing-slash redirect: the same 301/, check: (side, length) => (side === 'nginx' ? assert.ok(Number(length) > 0) : assert.equal(length, 0)) },
  },
  {
    name: 'an app route (Flask, JSON)',
    async run(port) {
      const r = await get(port, '/api/items');
      return { equal: { ...matter(r), body: JSON.parse(r.text) } };
    },
  },
  {
    name: 'forwarding headers are set from the connection, spoofed ones replaced',
    async run(port) {
      const r = await get(port, '/api/whoami', {
        'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example', 'X-Real-IP': '6.6.6.6', Forwarded: 'for=6.6.6.6',
      });
      const seen = JSON.parse(r.text) as Record<string, unknown>;
      delete seen.pid;
      return { equal: { status: r.status, seen } };
    },
  },
  {
    name: 'hop-by-hop headers stay on their hop; other headers reach the app',
    async run(port) {
      const r = await get(port, '/api/headers', { 'Keep-Alive': 'timeout=5', TE: 'trailers', 'Proxy-Authorization': 'Basic eDp5', 'X-Custom': 'kept', 'X-Real-IP': '6.6.6.6' });
      const seen = JSON.parse(r.text) as Record<string, string>;
      return { equal: { status: r.status, names: Object.keys(seen).sort(), custom: seen['x-custom'], realIp: seen['x-real-ip'] } };
    },
  },
  {
    name: 'an upload over 1 MB reaches the app whole',
    async run(port) {
      const r = await request(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: upload, headers: { 'Content-Type': 'application/octet-stream' } });
      return { equal: { status: r.status, body: JSON.parse(r.text) } };
    },
  },
  {
    name: "a body over the route's maxBodySize is 413",
    async run(port) {
      const r = await request(`http://127.0.0.1:${port}/small/upload`, { method: 'POST', body: randomBytes(4096) });
      return { equal: { status: r.status, type: r.headers['content-type'], title: titleOf(r.text) }, own: r.text };
    },
    own: { difference: /Error pages: the same pages, but ServeStack adds a detail line/, check: (side, text) => (side === 'nginx' ? assert.equal(text, errorPageHtml(413)) : assert.match(String(text), /The body is 4096 bytes/)) },
  },
  {
    name: 'a request within the pool timeout (3s) is answered',
    async run(port) {
      const r = await get(port, '/slow?s=1.5');
      const body = JSON.parse(r.text) as Record<string, unknown>;
      return { equal: { status: r.status, slept: body.slept } };
    },
  },
  {
    name: 'a request past the pool timeout fails, and the pool serves the next one',
    async run(port) {
      const r = await get(port, '/slow?s=20');
      const next = await get(port, '/api/items');
      return { equal: { type: r.headers['content-type'], next: next.status }, own: { status: r.status, title: titleOf(r.text) } };
    },
    own: {
      difference: /past a sync pool's timeout: ServeStack answers 504; Gunicorn kills the worker and NGINX answers 502/,
      check: (side, own) => assert.deepEqual(own, side === 'nginx' ? { status: 502, title: '502 Bad Gateway' } : { status: 504, title: '504 Gateway Timeout' }),
    },
  },
  {
    name: 'a WebSocket through a URL route, with forwarding headers',
    async run(port) {
      wsSeen.length = 0;
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/echo?room=1`, { headers: { 'X-Forwarded-For': '6.6.6.6' } });
      const reply = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('hello'));
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      });
      ws.close();
      const seen = wsSeen[0];
      return { equal: { reply, url: seen?.url, xff: seen?.headers['x-forwarded-for'], realIp: seen?.headers['x-real-ip'], forwarded: seen?.headers.forwarded } };
    },
  },
  {
    name: 'a rate limit (3/m): the 4th request is 429 with Retry-After',
    async run(port) {
      const replies: Reply[] = [];
      for (let i = 0; i < 4; i++) replies.push(await get(port, '/limited/items'));
      const last = replies[3];
      return { equal: { statuses: replies.map((r) => r.status), ...matter(last), body: last.text } };
    },
  },
  {
    name: 'an app answer over 1 KiB compressed with gzip on the fly, Vary, no length; identity without Accept-Encoding',
    async run(port) {
      const gz = await get(port, '/api/big', { 'Accept-Encoding': 'gzip' });
      const plain = await get(port, '/api/big');
      const decoded = gunzipSync(gz.body);
      return { equal: [{ status: gz.status, encoding: gz.headers['content-encoding'], vary: gz.headers.vary, length: gz.headers['content-length'], body: sha(decoded) }, { status: plain.status, encoding: plain.headers['content-encoding'], body: sha(plain.body) }] };
    },
  },
  {
    name: 'a route balanced over two URLs, one of them down: every request is answered by the live one',
    async run(port) {
      const replies = [];
      for (let i = 0; i < 4; i++) {
        const r = await get(port, '/lb/who');
        replies.push(`${r.status} ${r.text}`);
      }
      return { equal: replies };
    },
  },
];

/** A probe that throws is recorded as its error, so one failure does not hide the rest. */
async function attempt(p: Probe, port: number): Promise<Observed> {
  try {
    return await p.run(port);
  } catch (error) {
    return { equal: { error: (error as Error).message } };
  }
}

describe('export parity: servestack serve and the exported NGINX + Gunicorn answer alike', { skip: missing }, () => {
  let dir: string;
  let out: string;
  let port: number;
  let wsServer: WebSocketServer;
  let wsPort: number;
  let live: http.Server;
  let livePort: number;
  let deadPort: number;
  const results: Record<Side, Map<string, Observed>> = { servestack: new Map(), nginx: new Map() };

  before(async () => {
    dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    out = path.join(dir, 'deploy');
    port = await freePort();
    wsServer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wsServer.once('listening', () => resolve()));
    wsPort = (wsServer.address() as { port: number }).port;
    live = http.createServer((req, res) => res.end(`live ${req.url}`));
    await new Promise<void>((resolve) => live.listen(0, '127.0.0.1', () => resolve()));
    livePort = (live.address() as { port: number }).port;
    deadPort = await freePort(); // nothing listens there
    wsServer.on('connection', (socket, req) => {
      wsSeen.push({ url: req.url, headers: req.headers });
      socket.on('message', (data) => socket.send(`echo:${String(data)}`));
    });
    writeFileSync(path.join(dir, 'parity_app.py'), [
      'from flask import jsonify, request',
      'from app import app',
      '',
      '',
      '@app.get("/api/big")',
      'def big():',
      '    return jsonify([{"row": i, "name": "item %d" % i} for i in range(200)])',
      '',
      '',
      '@app.get("/api/headers")',
      'def headers():',
      '    return jsonify({k.lower(): v for k, v in request.headers.items()})',
      '',
    ].join('\n'));
    const stat = path.join(dir, 'static');
    mkdirSync(path.join(stat, 'sub'));
    mkdirSync(path.join(stat, '.git'));
    writeFileSync(path.join(stat, 'sub', 'index.html'), '<p>sub</p>\n');
    writeFileSync(path.join(stat, '.env'), 'SECRET=1\n');
    writeFileSync(path.join(stat, '.git', 'config'), '[core]\n');
    writeFileSync(path.join(stat, 'big.txt'), 'abcdefghij'.repeat(40_000)); // 400 KB: streamed, not cached
    const js = readFileSync(path.join(stat, 'app.js'));
    writeFileSync(path.join(stat, 'app.js.gz'), gzipSync(js));
    const old = new Date(Date.now() - 3600_000);
    for (const f of ['style.css', 'app.js', 'big.txt', 'sub/index.html']) utimesSync(path.join(stat, f), old, old); // settled: ServeStack caches them
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'parity_app:app', workers: 2, timeout: '3s' } },
      routes: [
        { path: '/static/', static: 'static' },
        { path: '/ws/', proxy: `http://127.0.0.1:${wsPort}` },
        { path: '/lb/', proxy: [`http://127.0.0.1:${livePort}`, `http://127.0.0.1:${deadPort}`] },
        { path: '/limited/', pool: 'web', rateLimit: '3/m' },
        { path: '/small/', pool: 'web', maxBodySize: '1k' },
        { path: '/', pool: 'web' },
      ],
      limits: { maxBodySize: '10m' },
    }, null, 2));
  });

  after(async () => {
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    await new Promise<void>((resolve) => live.close(() => resolve()));
  });

  test('the request list against servestack serve', async () => {
    const server = await serve(dir, ['--port', String(port), '--python', '/usr/bin/python3']);
    try {
      assert.equal(server.port, port);
      for (const p of probes) results.servestack.set(p.name, await attempt(p, port));
    } finally {
      await server.stop();
    }
  });

  test('the same list against the export on NGINX + Gunicorn, on the same port', async () => {
    const gunicornPort = await freePort();
    exportTo(dir, out, ['--port', String(port), '--hosts', `127.0.0.1:${gunicornPort}`]);
    const conf = readFileSync(path.join(out, 'nginx.conf'), 'utf8');
    const readTimeout = /location \/ \{[^}]*proxy_read_timeout (\d+)s/.exec(conf);
    assert.ok(readTimeout && Number(readTimeout[1]) >= 3, 'proxy_read_timeout is no shorter than the pool timeout');
    let gunicorn: Started | undefined;
    let nginx: Started | undefined;
    try {
      gunicorn = await startGunicorn(dir, path.join(out, 'gunicorn.conf.py'), gunicornPort);
      nginx = await startNginx(out, port);
      for (const p of probes) results.nginx.set(p.name, await attempt(p, port));
    } catch (error) {
      throw new Error(`${(error as Error).message}\nnginx error.log:\n${readLog(out)}\ngunicorn:\n${gunicorn?.output() ?? ''}`);
    } finally {
      await nginx?.stop();
      await gunicorn?.stop();
    }
  });

  for (const p of probes) {
    test(`equal: ${p.name}`, () => {
      const a = results.servestack.get(p.name);
      const b = results.nginx.get(p.name);
      assert.ok(a && b, 'both sides ran');
      assert.deepEqual(b.equal, a.equal);
      if (p.own) {
        assert.ok(DIFFERENCES.some((d) => p.own!.difference.test(d)), `the difference is listed in DIFFERENCES: ${p.own.difference}`);
        p.own.check('servestack', a.own);
        p.own.check('nginx', b.own);
      }
    });
  }
});
