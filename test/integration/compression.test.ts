// Compression on the fly, over real sockets: static files (kept in memory and streamed)
// and a real Python pool's answers, gzip and brotli decoded back byte for byte by
// node:zlib, and every case that must stay uncompressed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { findPython, request, serve, tempDir, type Reply, type ServeProcess } from './harness';

const python = findPython();

function decode(reply: Reply): Buffer {
  const coding = reply.headers['content-encoding'];
  if (coding === 'br') return zlib.brotliDecompressSync(reply.body);
  if (coding === 'gzip') return zlib.gunzipSync(reply.body);
  assert.equal(coding, undefined);
  return reply.body;
}

const TEXT = Buffer.from(Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox ☃ jumps over the lazy dog\n`).join(''));
// Larger than the in-memory limit (256 KiB): streamed from disk, compressed as it streams.
const LARGE = Buffer.from(Array.from({ length: 12000 }, (_, i) => `{"row": ${i}, "name": "item ${i % 97}", "ok": ${i % 3 === 0}}\n`).join(''));
// What the app's TEXT is (the Python source below builds the same lines).
const APP_TEXT = Buffer.from(Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(''));
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(4000, 7)]);

const APP = `
import os, time

TEXT = ''.join('line %d: the quick brown fox jumps over the lazy dog\\n' % i for i in range(400)).encode()
SIGNAL = os.environ['STREAM_SIGNAL']

def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/text':
        start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'), ('Content-Length', str(len(TEXT))), ('ETag', '"v1"')])
        return [TEXT]
    if path == '/small':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'small']
    if path == '/png':
        body = b'\\x89PNG\\r\\n\\x1a\\n' + b'\\x07' * 4000
        start_response('200 OK', [('Content-Type', 'image/png'), ('Content-Length', str(len(body)))])
        return [body]
    if path == '/no-transform':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Cache-Control', 'no-transform'), ('Content-Length', str(len(TEXT)))])
        return [TEXT]
    if path == '/encoded':
        import gzip
        body = gzip.compress(TEXT)
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Encoding', 'gzip'), ('Content-Length', str(len(body)))])
        return [body]
    if path == '/events':
        # One event, then wait (bounded) until the test has seen it arrive, then the rest.
        start_response('200 OK', [('Content-Type', 'text/event-stream'), ('Cache-Control', 'no-cache')])
        def events():
            yield b'data: first\\n\\n'
            deadline = time.time() + 20
            while not os.path.exists(SIGNAL) and time.time() < deadline:
                time.sleep(0.02)
            for i in range(50):
                yield ('data: event %d\\n\\n' % i).encode()
        return events()
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'no such path']
`;

describe('compression on the fly', { skip: python ? false : 'no python3 found' }, () => {
  let server: ServeProcess;
  let dir: string;
  const signal = () => path.join(dir, 'stream-signal');

  before(async () => {
    dir = tempDir();
    mkdirSync(path.join(dir, 'static'));
    writeFileSync(path.join(dir, 'static', 'page.txt'), TEXT);
    writeFileSync(path.join(dir, 'static', 'rows.json'), LARGE);
    writeFileSync(path.join(dir, 'static', 'image.png'), PNG);
    writeFileSync(path.join(dir, 'static', 'tiny.css'), 'a{b:c}');
    writeFileSync(path.join(dir, 'static', 'pre.js'), TEXT);
    writeFileSync(path.join(dir, 'static', 'pre.js.gz'), zlib.gzipSync(TEXT));
    // Files older than the racy window, so their entries (with the compressed bodies) are kept.
    const past = new Date(Date.now() - 60_000);
    for (const f of ['page.txt', 'rows.json', 'image.png', 'tiny.css', 'pre.js', 'pre.js.gz']) utimesSync(path.join(dir, 'static', f), past, past);
    mkdirSync(path.join(dir, 'plain'));
    writeFileSync(path.join(dir, 'plain', 'page.txt'), TEXT);
    writeFileSync(path.join(dir, 'app.py'), APP);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'app:app', workers: 1, python } },
      routes: [
        { path: '/static/', static: 'static' },
        { path: '/plain/', static: 'plain', compress: false },
        { path: '/', pool: 'web' },
      ],
    }));
    server = await serve(dir, [], { STREAM_SIGNAL: path.join(dir, 'stream-signal') });
    await server.waitFor(/worker \d+ ready/);
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => request(server.url + p.replace(/^\//, ''), { headers, method });

  for (const coding of ['br', 'gzip'] as const) {
    test(`a static file kept in memory round-trips through ${coding} byte for byte, and the second answer is the same`, async () => {
      const first = await get('/static/page.txt', { 'Accept-Encoding': coding });
      assert.equal(first.status, 200);
      assert.equal(first.headers['content-encoding'], coding);
      assert.equal(first.headers.vary, 'Accept-Encoding');
      assert.ok(first.body.length < TEXT.length / 3, `compressed to ${first.body.length} of ${TEXT.length}`);
      assert.equal(Number(first.headers['content-length']), first.body.length);
      assert.deepEqual(decode(first), TEXT);
      const second = await get('/static/page.txt', { 'Accept-Encoding': coding });
      assert.deepEqual(second.body, first.body);
      assert.equal(second.headers.etag, first.headers.etag);
      const revalidated = await get('/static/page.txt', { 'Accept-Encoding': coding, 'If-None-Match': String(first.headers.etag) });
      assert.equal(revalidated.status, 304);
    });

    test(`a streamed static file (over the memory limit) round-trips through ${coding}, chunked, with a weak ETag`, async () => {
      const reply = await get('/static/rows.json', { 'Accept-Encoding': coding });
      assert.equal(reply.headers['content-encoding'], coding);
      assert.equal(reply.headers['content-length'], undefined);
      assert.match(String(reply.headers.etag), /^W\//);
      assert.deepEqual(decode(reply), LARGE);
    });

    test(`an app answer from a Python worker round-trips through ${coding}; Content-Length goes and the ETag turns weak`, async () => {
      const reply = await get('/text', { 'Accept-Encoding': coding });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-encoding'], coding);
      assert.equal(reply.headers['content-length'], undefined);
      assert.equal(reply.headers.etag, 'W/"v1"');
      assert.equal(reply.headers.vary, 'Accept-Encoding');
      assert.deepEqual(decode(reply), APP_TEXT);
      // The access log counts the compressed bytes that left, not the app's.
      await server.waitFor(new RegExp(`"GET /text HTTP/1.1" 200 ${reply.body.length} `));
    });
  }

  test('an edited static file is compressed afresh on the next request', async () => {
    const file = path.join(dir, 'static', 'page.txt');
    const edited = Buffer.concat([TEXT, Buffer.from('one more line\n')]);
    writeFileSync(file, edited);
    const reply = await get('/static/page.txt', { 'Accept-Encoding': 'br' });
    assert.deepEqual(decode(reply), edited);
    writeFileSync(file, TEXT);
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past);
  });

  test('Accept-Encoding q-values: the higher q wins, brotli on a tie, q=0 refuses, no header means identity', async () => {
    assert.equal((await get('/static/page.txt', { 'Accept-Encoding': 'gzip, br' })).headers['content-encoding'], 'br');
    assert.equal((await get('/static/page.txt', { 'Accept-Encoding': 'gzip;q=1, br;q=0.8' })).headers['content-encoding'], 'gzip');
    assert.equal((await get('/text', { 'Accept-Encoding': 'br;q=0, gzip' })).headers['content-encoding'], 'gzip');
    assert.equal((await get('/text', { 'Accept-Encoding': '*;q=0.5, br;q=0' })).headers['content-encoding'], 'gzip');
    const refused = await get('/static/page.txt', { 'Accept-Encoding': 'gzip;q=0, br;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
    assert.deepEqual(refused.body, TEXT);
    assert.equal(refused.headers.vary, 'Accept-Encoding', 'an identity answer that could have been compressed says so');
    const none = await get('/text');
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.headers.vary, 'Accept-Encoding');
  });

  test('none for a Range request: the bytes asked for are the identity\'s', async () => {
    const stat = await get('/static/page.txt', { 'Accept-Encoding': 'br, gzip', Range: 'bytes=10-29' });
    assert.equal(stat.status, 206);
    assert.equal(stat.headers['content-encoding'], undefined);
    assert.deepEqual(stat.body, TEXT.subarray(10, 30));
    const large = await get('/static/rows.json', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-99' });
    assert.equal(large.status, 206);
    assert.equal(large.headers['content-encoding'], undefined);
    assert.deepEqual(large.body, LARGE.subarray(0, 100));
    const app = await get('/text', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-9' });
    assert.equal(app.headers['content-encoding'], undefined, 'the app ignored Range; its full answer stays identity');
  });

  test('none for image/png, a file under minSize, Cache-Control: no-transform, an answer already encoded, or a route with "compress": false', async () => {
    const png = await get('/static/image.png', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.headers.vary, undefined);
    assert.deepEqual(png.body, PNG);
    const appPng = await get('/png', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(appPng.headers['content-encoding'], undefined);
    assert.equal(Number(appPng.headers['content-length']), appPng.body.length);
    assert.equal((await get('/static/tiny.css', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], undefined);
    assert.equal((await get('/small', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], undefined);
    const noTransform = await get('/no-transform', { 'Accept-Encoding': 'gzip' });
    assert.equal(noTransform.headers['content-encoding'], undefined);
    assert.equal(Number(noTransform.headers['content-length']), noTransform.body.length);
    const encoded = await get('/encoded', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(encoded.headers['content-encoding'], 'gzip', 'the app\'s own coding, not a second one');
    assert.deepEqual(zlib.gunzipSync(encoded.body), APP_TEXT);
    const plain = await get('/plain/page.txt', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.deepEqual(plain.body, TEXT);
  });

  test('a precompressed .gz sibling wins over compressing on the fly', async () => {
    const reply = await get('/static/pre.js', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(reply.headers['content-encoding'], 'gzip');
    assert.deepEqual(reply.body, zlib.gzipSync(TEXT));
  });

  test('HEAD of a static file gets the headers a GET would, with no body; HEAD to the app is never compressed', async () => {
    const head = await get('/static/page.txt', { 'Accept-Encoding': 'gzip' }, 'HEAD');
    assert.equal(head.headers['content-encoding'], 'gzip');
    assert.equal(head.body.length, 0);
    const appHead = await get('/text', { 'Accept-Encoding': 'gzip' }, 'HEAD');
    assert.equal(appHead.body.length, 0);
    assert.equal(appHead.headers['content-encoding'], undefined);
  });

  for (const coding of ['br', 'gzip'] as const) {
    test(`server-sent events still stream through ${coding}: the first event arrives before the app writes the next`, async () => {
      rmSync(signal(), { force: true });
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.get(server.url + 'events', { agent: false, headers: { 'Accept-Encoding': coding } }, (res) => {
          assert.equal(res.headers['content-encoding'], coding);
          const decoder = coding === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
          let seen = '';
          let signalled = false;
          decoder.on('data', (chunk: Buffer) => {
            seen += chunk.toString('utf8');
            if (!signalled && seen.includes('data: first')) {
              signalled = true;
              // The app goes on only now (or after its 20 s bound): events past the first mean the first was held back.
              if (seen.includes('event 0')) reject(new Error('the first event arrived only with the later ones'));
              else writeFileSync(signal(), 'go');
            }
          });
          decoder.on('end', () => (signalled ? resolve(seen) : reject(new Error('the stream ended before the first event was seen'))));
          decoder.on('error', reject);
          res.pipe(decoder);
        });
        req.on('error', reject);
        req.setTimeout(30000, () => req.destroy(new Error('no events arrived')));
      });
      assert.ok(existsSync(signal()));
      assert.ok(text.startsWith('data: first\n\n'));
      assert.ok(text.endsWith('data: event 49\n\n'));
    });
  }
});
