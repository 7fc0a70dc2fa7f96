// The static handler behind the router, over real HTTP on loopback. Requests are written
// as raw bytes with `net` so no client normalises the hostile paths before they leave.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createRouter } from '../../server/proxy/router';
import { createStaticHandler, type StaticHandler } from '../../server/proxy/static';
import type { RouteConfig } from '../../server/config/types';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
const REQUEST_TIMEOUT_MS = 5000;

let base: string; // temp dir: base/root is served, base/secret sits beside it
let root: string;
let server: http.Server;
let port: number;
let fast: StaticHandler; // racyWindowMs 0: entries are kept at once, to observe the cache
const handlers: StaticHandler[] = [];
const errors: unknown[] = [];
let bigSha: string;

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One request on a fresh connection, target sent byte for byte. */
function raw(target: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const lines = [`${opts.method ?? 'GET'} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy(new Error(`timeout on ${target}`)));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers, body: all.subarray(split + 4) });
    });
    // write, not end: a half-closed client makes Node's server drop pending responses.
    socket.write(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  });
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const write = (rel: string, content: string | Buffer): void => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), content);
};

before(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-static-'));
  root = path.join(base, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(base, 'secret'), SECRET);
  fs.writeFileSync(path.join(base, 'secret.txt'), SECRET);
  write('style.css', 'body { color: red }\n');
  write('one.txt', 'x'.repeat(1024));
  write('empty.txt', '');
  write('data.json', '{"a":1}');
  write('noext', 'plain bytes');
  write('docs/index.html', '<h1>docs</h1>\n');
  write('docs/page.html', '<p>page</p>\n');
  write('noindex/file.txt', 'in a folder without index');
  write('evil.example/index.html', 'not an open redirect');
  write('.env', 'DOTFILE=1');
  write('.git/config', '[core]');
  write('.hidden/x.txt', 'in a dot dir');
  write('%2e%2e/secret', 'a folder literally named %2e%2e, inside the root');
  write('with space.txt', 'space ok');
  write('snow ☃.txt', 'snowman ok');
  write('cache/fast.txt', 'fast-one');
  const big = randomBytes(2 * 1024 * 1024);
  bigSha = sha256(big);
  write('big.bin', big);
  const js = 'console.log("precompressed");\n'.repeat(40);
  write('app.js', js);
  write('app.js.gz', zlib.gzipSync(js));
  write('app.js.br', zlib.brotliCompressSync(js));
  write('stale.js', 'edited after its .gz was built');
  const staleGz = path.join(root, 'stale.js.gz');
  fs.writeFileSync(staleGz, zlib.gzipSync('old build'));
  fs.utimesSync(staleGz, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  try {
    fs.symlinkSync(path.join(base, 'secret'), path.join(root, 'link-out.txt'));
    fs.symlinkSync(base, path.join(root, 'dir-out'));
    fs.symlinkSync('.env', path.join(root, 'link-dot.txt'));
    fs.symlinkSync('one.txt', path.join(root, 'link-in.txt'));
  } catch (err) {
    errors.push(err); // reported by the symlink test, which is skipped then
  }

  const onError = (e: unknown): void => void errors.push(e);
  const main = createStaticHandler(root, { onError });
  const prefixed = createStaticHandler(root, { onError });
  fast = createStaticHandler(root, { onError, racyWindowMs: 0 });
  handlers.push(main, prefixed, fast);
  const routes: RouteConfig[] = [
    { kind: 'static', path: '/', root, index: 0 },
    { kind: 'static', path: '/static/', root, index: 1 },
    { kind: 'static', path: '/fast/', root, index: 2 },
    { kind: 'pool', path: '/api/', pool: 'web', index: 3 },
  ];
  const byPath = new Map([['/', main], ['/static/', prefixed], ['/fast/', fast]]);
  const router = createRouter(routes);
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const m = router.match(q === -1 ? url : url.slice(0, q));
    if (!m) {
      res.writeHead(404).end();
    } else if (m.redirect) {
      res.writeHead(301, { Location: m.redirect + (q === -1 ? '' : url.slice(q)) }).end();
    } else if (m.route.kind === 'static') {
      byPath.get(m.route.path)!.handle(req, res, m.rest);
    } else {
      res.end('pool:' + m.rest);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  try {
    for (const h of handlers) h.close();
    server?.closeAllConnections();
    if (server?.listening) await new Promise((resolve) => server.close(resolve));
  } finally {
    if (base) fs.rmSync(base, { recursive: true, force: true });
  }
});

describe('static files', () => {
  test('serves a file with Content-Type, Content-Length, ETag, Last-Modified and Cache-Control', async () => {
    const r = await raw('/style.css');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(r.headers['content-length'], String('body { color: red }\n'.length));
    assert.match(r.headers['etag'], /^"[^"]+"$/);
    assert.equal(r.headers['last-modified'], new Date(Math.floor(fs.statSync(path.join(root, 'style.css')).mtimeMs / 1000) * 1000).toUTCString());
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.body.toString(), 'body { color: red }\n');
    assert.equal((await raw('/data.json')).headers['content-type'], 'application/json; charset=utf-8');
    assert.equal((await raw('/noext')).headers['content-type'], 'application/octet-stream');
  });

  test('answers 304 to If-None-Match with the current ETag, and 200 to a stale one', async () => {
    const { headers } = await raw('/style.css');
    const hit = await raw('/style.css', { headers: { 'If-None-Match': headers['etag'] } });
    assert.equal(hit.status, 304);
    assert.equal(hit.body.length, 0);
    assert.equal(hit.headers['etag'], headers['etag']);
    const list = await raw('/style.css', { headers: { 'If-None-Match': `"nope", W/${headers['etag']}` } });
    assert.equal(list.status, 304);
    const miss = await raw('/style.css', { headers: { 'If-None-Match': '"stale"' } });
    assert.equal(miss.status, 200);
  });

  test('answers 304 to If-Modified-Since at or after Last-Modified, 200 before it', async () => {
    const { headers } = await raw('/style.css');
    assert.equal((await raw('/style.css', { headers: { 'If-Modified-Since': headers['last-modified'] } })).status, 304);
    const later = new Date(Date.parse(headers['last-modified']) + 60_000).toUTCString();
    assert.equal((await raw('/style.css', { headers: { 'If-Modified-Since': later } })).status, 304);
    const earlier = new Date(Date.parse(headers['last-modified']) - 60_000).toUTCString();
    assert.equal((await raw('/style.css', { headers: { 'If-Modified-Since': earlier } })).status, 200);
    // If-None-Match wins over If-Modified-Since.
    const both = await raw('/style.css', { headers: { 'If-None-Match': '"stale"', 'If-Modified-Since': headers['last-modified'] } });
    assert.equal(both.status, 200);
  });

  test('answers 412 when If-Match does not match', async () => {
    assert.equal((await raw('/style.css', { headers: { 'If-Match': '"other"' } })).status, 412);
    const { headers } = await raw('/style.css');
    assert.equal((await raw('/style.css', { headers: { 'If-Match': headers['etag'] } })).status, 200);
  });

  test('answers a byte range with 206 and exactly those bytes', async () => {
    const full = fs.readFileSync(path.join(root, 'one.txt'));
    const cases: Array<[string, number, number]> = [['bytes=0-9', 0, 9], ['bytes=1000-', 1000, 1023], ['bytes=-24', 1000, 1023], ['bytes=1020-5000', 1020, 1023]];
    for (const [range, start, end] of cases) {
      const r = await raw('/one.txt', { headers: { Range: range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/1024`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(r.body, full.subarray(start, end + 1), range);
    }
  });

  test('answers 416 for a range past the end', async () => {
    for (const range of ['bytes=1024-', 'bytes=5000-6000', 'bytes=-0']) {
      const r = await raw('/one.txt', { headers: { Range: range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], 'bytes */1024', range);
    }
    assert.equal((await raw('/empty.txt', { headers: { Range: 'bytes=0-' } })).status, 416);
  });

  test('answers 200 in full for several ranges, a bad range, or an If-Range that no longer matches', async () => {
    const { headers } = await raw('/one.txt');
    const cases: Array<Record<string, string>> = [
      { Range: 'bytes=0-1,5-6' },
      { Range: 'bytes=9-1' },
      { Range: 'lines=1-2' },
      { Range: 'bytes=0-9', 'If-Range': '"stale"' },
      { Range: 'bytes=0-9', 'If-Range': new Date(Date.parse(headers['last-modified']) - 60_000).toUTCString() },
    ];
    for (const extra of cases) {
      const r = await raw('/one.txt', { headers: extra });
      assert.equal(r.status, 200, JSON.stringify(extra));
      assert.equal(r.body.length, 1024);
    }
    const ok = await raw('/one.txt', { headers: { Range: 'bytes=0-9', 'If-Range': headers['etag'] } });
    assert.equal(ok.status, 206);
    const byDate = await raw('/one.txt', { headers: { Range: 'bytes=0-9', 'If-Range': headers['last-modified'] } });
    assert.equal(byDate.status, 206);
  });

  test('answers HEAD with the headers of GET and no body', async () => {
    for (const p of ['/one.txt', '/big.bin', '/docs/']) {
      const get = await raw(p);
      const head = await raw(p, { method: 'HEAD' });
      assert.equal(head.status, 200, p);
      assert.equal(head.body.length, 0, p);
      assert.equal(head.headers['content-length'], get.headers['content-length'], p);
      assert.equal(head.headers['etag'], get.headers['etag'], p);
      assert.equal(head.headers['content-type'], get.headers['content-type'], p);
    }
  });

  test('answers 405 with Allow for methods other than GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await raw('/one.txt', { method, headers: { 'Content-Length': '0' } });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers['allow'], 'GET, HEAD');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    }
  });

  test('never serves a file outside the root, whatever the encoding', async () => {
    const attempts = [
      '/../secret', '/%2e%2e/secret', '/%2e%2e%2fsecret', '/..%2fsecret', '/..%2Fsecret', '/..\\secret',
      '/%5c..%5csecret', '/%00', '/secret%00.txt', '/.%2e/secret', '/%2e./secret',
      '/%252e%252e%252fsecret', '//etc/passwd', '/../../../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/docs/../../secret', '/docs/%2e%2e/%2e%2e/secret', '/..', '/%2e%2e', '/.%00./secret', '/%c0%ae%c0%ae/secret',
      '/dir-out/secret', '/link-out.txt',
    ];
    for (const prefix of ['', '/static', '/fast']) {
      for (const attempt of attempts) {
        const r = await raw(prefix + attempt);
        assert.ok(!r.body.includes(SECRET), `${prefix + attempt} leaked the secret`);
        assert.ok(!r.body.includes('root:'), `${prefix + attempt} leaked /etc/passwd`);
        assert.ok([400, 404].includes(r.status), `${prefix + attempt} answered ${r.status}`);
      }
    }
    // Encoded separators are refused outright rather than decoded into a path.
    for (const attempt of ['/%2e%2e%2fsecret', '/docs%2findex.html', '/%5csecret', '/%00']) {
      assert.equal((await raw(attempt)).status, 404, attempt);
    }
    // Decoded once: "%252e%252e" is the literal folder "%2e%2e" inside the root.
    const literal = await raw('/%252e%252e/secret');
    assert.equal(literal.status, 200);
    assert.equal(literal.body.toString(), 'a folder literally named %2e%2e, inside the root');
    assert.equal((await raw('/%e0%a4%a')).status, 400);
  });

  test('follows a symlink that stays inside the root, refuses ones that leave it or reach a dotfile', async (t) => {
    if (!fs.existsSync(path.join(root, 'link-in.txt'))) return t.skip('symlinks unavailable');
    assert.equal((await raw('/link-in.txt')).status, 200);
    // Out through a symlink and back in again: the real path is inside, so it is served.
    assert.equal((await raw('/dir-out/root/one.txt')).status, 200);
    for (const p of ['/link-out.txt', '/dir-out/secret', '/dir-out/secret.txt', '/link-dot.txt']) {
      const r = await raw(p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.body.includes(SECRET) && !r.body.includes('DOTFILE'), p);
    }
  });

  test('answers 404 for dotfiles and for files inside dot-directories', async () => {
    for (const p of ['/.env', '/.git/config', '/.hidden/x.txt', '/.hidden/', '/%2eenv', '/static/.env', '/.git/']) {
      const r = await raw(p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.toString(), '404 Not Found\n', p);
    }
  });

  test('serves a directory index and answers 404 for a directory without one, never a listing', async () => {
    const docs = await raw('/docs/');
    assert.equal(docs.status, 200);
    assert.equal(docs.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(docs.body.toString(), '<h1>docs</h1>\n');
    assert.equal((await raw('/static/docs/')).body.toString(), '<h1>docs</h1>\n');
    const none = await raw('/noindex/');
    assert.equal(none.status, 404);
    assert.ok(!none.body.includes('file.txt'));
    assert.equal((await raw('/noindex/file.txt')).status, 200);
    assert.equal((await raw('/one.txt/')).status, 404, 'a file with a trailing slash');
  });

  test('redirects a directory asked for without its slash, keeping the query', async () => {
    const r = await raw('/docs?x=1&y=%20');
    assert.equal(r.status, 301);
    assert.equal(r.headers['location'], '/docs/?x=1&y=%20');
    assert.equal((await raw('/static/docs')).headers['location'], '/static/docs/');
    // Never a protocol-relative open redirect.
    const evil = await raw('//evil.example');
    assert.equal(evil.status, 301);
    assert.equal(evil.headers['location'], '/evil.example/');
  });

  test('redirects a route path asked for without its slash (router)', async () => {
    const r = await raw('/api?q=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers['location'], '/api/?q=1');
    assert.equal((await raw('/api/items')).body.toString(), 'pool:items');
  });

  test('serves files with hostile names through their percent-encoded paths', async () => {
    const space = await raw('/with%20space.txt');
    assert.equal(space.status, 200);
    assert.equal(space.body.toString(), 'space ok');
    const snow = await raw('/snow%20%E2%98%83.txt');
    assert.equal(snow.status, 200);
    assert.equal(snow.body.toString(), 'snowman ok');
    assert.equal((await raw('/static/snow%20%e2%98%83.txt')).body.toString(), 'snowman ok');
  });

  test('serves a file changed on disk fresh, from memory or not', async () => {
    // Default handler: a file saved within the racy window is re-read on every request,
    // so two same-size saves within one file-time tick still show.
    write('change.txt', 'version-A');
    assert.equal((await raw('/change.txt')).body.toString(), 'version-A');
    write('change.txt', 'version-B');
    assert.equal((await raw('/change.txt')).body.toString(), 'version-B');
    // Cache kept at once: the per-request stat sees the change.
    write('cache/changing.txt', 'first');
    const first = await raw('/fast/cache/changing.txt');
    assert.equal(first.body.toString(), 'first');
    const hitsBefore = fast.stats().hits;
    assert.equal((await raw('/fast/cache/changing.txt')).body.toString(), 'first');
    assert.ok(fast.stats().hits > hitsBefore, 'the second request came from memory');
    write('cache/changing.txt', 'second, longer');
    const second = await raw('/fast/cache/changing.txt');
    assert.equal(second.body.toString(), 'second, longer');
    assert.notEqual(second.headers['etag'], first.headers['etag']);
    assert.equal((await raw('/fast/cache/changing.txt', { headers: { 'If-None-Match': first.headers['etag'] } })).status, 200);
    fs.rmSync(path.join(root, 'cache/changing.txt'));
    assert.equal((await raw('/fast/cache/changing.txt')).status, 404);
  });

  test('streams a large file intact, with ranges and conditionals', async () => {
    const r = await raw('/big.bin');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(2 * 1024 * 1024));
    assert.equal(sha256(r.body), bigSha);
    const again = await raw('/fast/big.bin');
    assert.equal(sha256(again.body), bigSha);
    const big = fs.readFileSync(path.join(root, 'big.bin'));
    const part = await raw('/big.bin', { headers: { Range: 'bytes=1000000-1100000' } });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, big.subarray(1000000, 1100001));
    assert.equal((await raw('/big.bin', { headers: { 'If-None-Match': r.headers['etag'] } })).status, 304);
    assert.equal((await raw('/big.bin', { headers: { Range: 'bytes=3000000-' } })).status, 416);
  });

  test('serves a precompressed sibling when Accept-Encoding allows it, with Vary', async () => {
    const js = fs.readFileSync(path.join(root, 'app.js'));
    const br = await raw('/app.js', { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['vary'], 'Accept-Encoding');
    assert.equal(br.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.deepEqual(zlib.brotliDecompressSync(br.body), js);
    const gz = await raw('/app.js', { headers: { 'Accept-Encoding': 'gzip, br;q=0' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(gz.body), js);
    const plain = await raw('/app.js');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['vary'], 'Accept-Encoding');
    assert.deepEqual(plain.body, js);
    assert.notEqual(plain.headers['etag'], br.headers['etag']);
    const ranged = await raw('/app.js', { headers: { 'Accept-Encoding': 'br', Range: 'bytes=0-6' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.body.toString(), 'console');
    // A sibling older than its file is stale and ignored.
    const stale = await raw('/stale.js', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(stale.headers['content-encoding'], undefined);
    assert.equal(stale.body.toString(), 'edited after its .gz was built');
  });

  test('reported no unexpected errors', () => {
    const unexpected = errors.filter((e) => !(e instanceof Error && 'code' in e && (e as NodeJS.ErrnoException).code === 'EPERM'));
    assert.deepEqual(unexpected, []);
  });
});
