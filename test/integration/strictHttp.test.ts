// Strict HTTP/1.1 at the front, end to end: raw bytes on a socket to the real server, a
// real Python worker behind it running an app that logs every request it sees. Each
// malformed case (test/fixtures/requests/invalid/*.http) must get its status, an error page
// from ServeStack, an access line, the connection closed unless the case says otherwise,
// and never reach the app. The accepted cases must reach it as they should.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCases } from '../fixtures/requests/corpus';
import { ROOT, eventually, findPython, request, serve, tempCopy, type ServeProcess } from './harness';

const python = findPython();
const APP = path.join(ROOT, 'test', 'fixtures', 'apps', 'request-log');
const EXCHANGE_BOUND_MS = 10000;

interface Exchange {
  raw: Buffer;
  statusLine: string;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

/** Writes bytes on a fresh connection; resolves once the server closed it, or once one whole response arrived when `untilResponse`. */
function exchange(port: number, bytes: Buffer, untilResponse = false): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const text = raw.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end < 0 ? text : text.slice(0, end);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      if (!closed) socket.destroy();
      resolve({ raw, statusLine, headers, body: end < 0 ? '' : text.slice(end + 4), closed });
    };
    const complete = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      return end >= 0 && length !== null && text.length - end - 4 >= Number(length[1]);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${untilResponse ? 'response' : 'close'} within ${EXCHANGE_BOUND_MS} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, EXCHANGE_BOUND_MS);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (untilResponse && complete()) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined); // a reset after the answer still ends in 'close'
    socket.write(bytes);
  });
}

interface Seen {
  method: string;
  path: string;
  query: string;
  body: number;
  headers: string[];
  [key: string]: unknown;
}

describe('strict HTTP/1.1 at the front', { skip: python ? false : 'no python3 found' }, () => {
  let server: ServeProcess;
  let dir: string;
  let markers = 0;
  const appLog = (): Seen[] => {
    const file = path.join(dir, 'requests.log');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Seen);
  };
  const accessLines = () => server.output().split('\n').filter((l) => /^\S+ - - \[/.test(l));
  /**
   * A normal request after the case. The pool has one single-threaded worker, so once this
   * is answered every earlier request that was dispatched has been through the app.
   */
  const marker = async () => {
    const reply = await request(`${server.url}__marker?n=${++markers}`);
    assert.equal(reply.status, 200);
    return `/__marker`;
  };

  before(async () => {
    dir = tempCopy(APP);
    server = await serve(dir, ['--python', python!]);
    await server.waitFor(/worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const c of loadCases('invalid')) {
    test(`answers ${c.status} to ${c.why} [${c.file}], and the app never sees it`, async () => {
      const seenBefore = appLog().length;
      const linesBefore = accessLines().length;
      const reply = await exchange(server.port, c.bytes, c.keepAlive);
      assert.match(reply.statusLine, new RegExp(`^HTTP/1\\.1 ${c.status} `), `status line of ${c.file}`);
      assert.match(reply.body, /<small>ServeStack<\/small>/, 'the error page is ServeStack\'s');
      if (c.keepAlive) assert.equal(reply.closed, false);
      else {
        assert.equal(reply.closed, true, 'the connection is closed');
        assert.equal(reply.headers.connection, 'close');
      }
      if (c.status === 405) assert.equal(reply.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      await marker();
      assert.deepEqual(appLog().slice(seenBefore).map((s) => s.path), ['/__marker'], 'only the marker reached the app');
      const lines = await eventually(() => {
        const now = accessLines().slice(linesBefore);
        return now.length >= 2 ? now : undefined;
      }, 5000, 'the access lines of the case and the marker');
      assert.match(lines[0], new RegExp(`" ${c.status} \\d+ `), 'the refusal has its access line');
    });
  }

  test('an absolute-form target is routed by its path, and its authority becomes Host', async () => {
    const reply = await exchange(server.port, Buffer.from('GET http://app.example:8080/abs/path?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n'), true);
    assert.match(reply.statusLine, /^HTTP\/1\.1 200 /);
    const seen = JSON.parse(reply.body) as Seen;
    assert.equal(seen.path, '/abs/path');
    assert.equal(seen.query, 'q=1');
    assert.equal(seen.http_host, 'app.example:8080');
    assert.equal(seen.http_x_forwarded_host, 'app.example:8080');
    assert.equal(seen.server_name, 'app.example');
  });

  test('an absolute-form target reaches a static route by its path too', async () => {
    const reply = await exchange(server.port, Buffer.from(`GET http://127.0.0.1:${server.port}/static/file.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`), true);
    assert.match(reply.statusLine, /^HTTP\/1\.1 200 /);
    assert.equal(reply.body, 'static file\n');
  });

  test('an h2c Upgrade is answered as the plain request it also is, without its Upgrade fields, and the connection goes on', async () => {
    const upgrade = 'GET /h2c HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n';
    const socket = net.connect(server.port, '127.0.0.1');
    try {
      const replies: string[] = [];
      let text = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`two answers not received: ${text.slice(0, 300)}`)), EXCHANGE_BOUND_MS);
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          // Each answer is JSON with a Content-Length: split them as they complete.
          for (;;) {
            const end = text.indexOf('\r\n\r\n');
            const length = /content-length: *(\d+)/i.exec(text.slice(0, end));
            if (end < 0 || !length || text.length < end + 4 + Number(length[1])) break;
            replies.push(text.slice(0, end + 4 + Number(length[1])));
            text = text.slice(end + 4 + Number(length[1]));
          }
          if (replies.length === 2) {
            clearTimeout(timer);
            resolve();
          }
        });
        socket.on('error', reject);
        // A body too, to show the replayed request keeps it; then a second request on the same connection.
        socket.write(upgrade.replace('GET /h2c', 'POST /h2c').replace('\r\n\r\n', '\r\nContent-Length: 5\r\n\r\nhello'));
        socket.write('GET /after-h2c HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
      assert.match(replies[0], /^HTTP\/1\.1 200 /);
      const seen = JSON.parse(replies[0].slice(replies[0].indexOf('\r\n\r\n') + 4)) as Seen;
      assert.equal(seen.path, '/h2c');
      assert.equal(seen.body, 5);
      for (const name of ['HTTP_UPGRADE', 'HTTP_HTTP2_SETTINGS', 'HTTP_CONNECTION']) assert.ok(!seen.headers.includes(name), `${name} is not passed on`);
      assert.match(replies[1], /^HTTP\/1\.1 200 /);
      assert.match(replies[1], /"path": "\/after-h2c"/);
    } finally {
      socket.destroy();
    }
  });

  test('a WebSocket upgrade to a Python pool is still answered 501', async () => {
    const reply = await exchange(server.port, Buffer.from('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
    assert.match(reply.statusLine, /^HTTP\/1\.1 501 /);
  });

  test('a Proxy header (httpoxy) and names with underscores never reach the app', async () => {
    const reply = await exchange(server.port, Buffer.from('GET /proxy HTTP/1.1\r\nHost: localhost\r\nProxy: http://evil.example:3128\r\nX_Forwarded_For: 6.6.6.6\r\nX-Kept: 1\r\n\r\n'), true);
    const seen = JSON.parse(reply.body) as Seen;
    assert.equal(seen.http_proxy, undefined);
    assert.ok(!seen.headers.includes('HTTP_PROXY'));
    assert.equal(seen.http_x_forwarded_for, '127.0.0.1', 'X_Forwarded_For did not fold into X-Forwarded-For');
    assert.ok(seen.headers.includes('HTTP_X_KEPT'));
  });

  test('accepted at the limits: 100 header fields, an 8 KiB request line, an HTTP/1.0 request without Host, TRACE keeps no cookie', async () => {
    const fields = Array.from({ length: 99 }, (_, i) => `X-F${i}: 1\r\n`).join('');
    const hundred = await exchange(server.port, Buffer.from(`GET /hundred HTTP/1.1\r\nHost: localhost\r\n${fields}\r\n`), true);
    assert.match(hundred.statusLine, /^HTTP\/1\.1 200 /);
    const target = `/line?${'a'.repeat(8192 - 'GET /line? HTTP/1.1'.length)}`;
    const line = await exchange(server.port, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`), true);
    assert.match(line.statusLine, /^HTTP\/1\.1 200 /, 'a request line of exactly 8192 bytes is accepted');
    const old = await exchange(server.port, Buffer.from('GET /http10 HTTP/1.0\r\n\r\n'));
    assert.match(old.statusLine, /^HTTP\/1\.1 200 /);
    assert.equal(appLog().filter((s) => s.headers.includes('HTTP_COOKIE')).length, 0, 'no request with a cookie reached the app (TRACE included)');
  });
});

describe('strict HTTP/1.1 does not rest on Node defaults', { skip: python ? false : 'no python3 found' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempCopy(APP);
    const config = JSON.parse(readFileSync(path.join(dir, 'servestack.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as Record<string, unknown>;
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ ...config, limits: { maxHeaderCount: 3000 } }));
    // A user's NODE_OPTIONS must not weaken the parser of the front.
    server = await serve(dir, ['--python', python!], { NODE_OPTIONS: '--insecure-http-parser' });
    await server.waitFor(/worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with --insecure-http-parser in NODE_OPTIONS, smuggling and folded headers are still refused', async () => {
    for (const raw of [
      'POST /smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /fold HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n',
      'GET /lf HTTP/1.1\nHost: localhost\n\n',
    ]) {
      const reply = await exchange(server.port, Buffer.from(raw));
      assert.match(reply.statusLine, /^HTTP\/1\.1 400 /, JSON.stringify(raw));
    }
  });

  test('every header field up to limits.maxHeaderCount reaches the app, past the 2000 Node would keep', async () => {
    const fields = Array.from({ length: 2500 }, (_, i) => `X-N${i}: 1\r\n`).join('');
    const reply = await exchange(server.port, Buffer.from(`GET /many HTTP/1.1\r\nHost: localhost\r\n${fields}\r\n`), true);
    assert.match(reply.statusLine, /^HTTP\/1\.1 200 /);
    const seen = JSON.parse(reply.body) as Seen;
    assert.ok(seen.headers.includes('HTTP_X_N2499'), 'the last field arrived');
    assert.equal(seen.headers.filter((h) => h.startsWith('HTTP_X_N')).length, 2500);
  });
});

describe('a connection that never sends a byte', { skip: python ? false : 'no python3 found' }, () => {
  test('does not hold up the server\'s stop, even with a long headerTimeout', async () => {
    const dir = tempCopy(APP);
    const config = JSON.parse(readFileSync(path.join(dir, 'servestack.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as Record<string, unknown>;
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ ...config, limits: { headerTimeout: '1h' } }));
    const server = await serve(dir, ['--python', python!]);
    const silent = net.connect(server.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => silent.once('connect', resolve).once('error', reject));
      const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
      silent.on('error', () => undefined);
      // A request on another connection proves the server took the silent one in (it was accepted first).
      assert.equal((await request(`${server.url}__marker`)).status, 200);
      assert.equal(await server.stop(), 0, 'the server stopped by itself, not by the harness\'s SIGKILL');
      await closed;
    } finally {
      silent.destroy();
      await server.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
