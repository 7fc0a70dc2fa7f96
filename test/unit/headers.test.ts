import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../../server/proxy/headers';
import { upstreamPath } from '../../server/upstream/http';
import { parseEnvText } from '../../server/pool/envFile';
import { RateLimiter } from '../../server/proxy/rateLimit';

function fakeRequest(raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[raw[i].toLowerCase()] = raw[i + 1];
  return { rawHeaders: raw, headers } as unknown as IncomingMessage;
}

test('hop-by-hop headers and those named in Connection are dropped; forwarding headers are set afresh', () => {
  const req = fakeRequest(['Host', 'a.test', 'Connection', 'keep-alive, X-Drop', 'X-Drop', '1', 'TE', 'trailers', 'X-Forwarded-For', '6.6.6.6', 'Forwarded', 'for=6.6.6.6', 'Accept', '*/*']);
  const out = upstreamRequestHeaders(req, { remoteAddr: '127.0.0.1', scheme: 'https', host: 'a.test', port: 8443 });
  assert.deepEqual(out, [
    ['host', 'a.test'], ['accept', '*/*'],
    ['x-forwarded-for', '127.0.0.1'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'a.test'], ['x-forwarded-port', '8443'], ['x-real-ip', '127.0.0.1'],
  ]);
});

test('response hop-by-hop headers are dropped, repeated headers such as Set-Cookie kept', () => {
  const kept = downstreamResponseHeaders([['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Transfer-Encoding', 'chunked'], ['Connection', 'X-Internal'], ['X-Internal', 'x'], ['Content-Type', 'text/plain']]);
  assert.deepEqual(kept, [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['Content-Type', 'text/plain']]);
  assert.deepEqual(downstreamResponseHeaders([['Keep-Alive', 'timeout=5'], ['X-A', '1']]), [['X-A', '1']]);
  const clean: [string, string][] = [['Content-Type', 'text/html'], ['Content-Length', '2']];
  assert.equal(downstreamResponseHeaders(clean), clean, 'a head with nothing to drop is passed on as it is, not copied');
});

test('a URL route passes the URI unchanged without a target path, replaces the prefix with one (NGINX proxy_pass)', () => {
  assert.equal(upstreamPath('http://127.0.0.1:5173', '/vite/', '/vite/a.js?x=1'), '/vite/a.js?x=1');
  assert.equal(upstreamPath('http://127.0.0.1:5173/', '/vite/', '/vite/a.js?x=1'), '/a.js?x=1');
  assert.equal(upstreamPath('http://127.0.0.1:5173/app/', '/vite/', '/vite/a.js'), '/app/a.js');
});

test('env files: quotes, export, comments; a bad line is reported with its line number and skipped', () => {
  const warnings: string[] = [];
  const env = parseEnvText('# c\nexport A=1\nB="two\\nlines"\nC=\'lit $X\'\nD=plain # note\nnot a line\n', '.env', (m) => warnings.push(m));
  assert.deepEqual(env, { A: '1', B: 'two\nlines', C: 'lit $X', D: 'plain' });
  assert.deepEqual(warnings, ['.env:6:1: warning: not a KEY=VALUE line; it is ignored']);
});

test('a rate limit allows a burst of its count, then asks the client to wait', () => {
  const limiter = new RateLimiter(3, 1000);
  const now = 1_000_000;
  assert.deepEqual([0, 1, 2, 3].map(() => limiter.take('a', now)), [0, 0, 0, 1]);
  assert.equal(limiter.take('b', now), 0, 'clients have separate buckets');
  assert.equal(limiter.take('a', now + 400), 0, 'a token came back after a third of a second');
});

test('header names are judged the same however they are spelled, the first time and every time after (the name memo)', () => {
  for (let round = 0; round < 3; round++) {
    const req = fakeRequest(['HOST', 'a.test', 'Proxy', 'http://evil', 'X_Forwarded_For', '6.6.6.6', 'x-real-ip', '6.6.6.6', 'Keep-Alive', '5', 'X-App', 'ok']);
    const names = upstreamRequestHeaders(req, { remoteAddr: '127.0.0.1', scheme: 'http', host: 'a.test', port: 80 }).map(([n]) => n);
    assert.deepEqual(names, ['host', 'x-app', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'], `round ${round}`);
    assert.deepEqual(downstreamResponseHeaders([['TRANSFER-ENCODING', 'chunked'], ['Content-Type', 'text/plain']]), [['Content-Type', 'text/plain']], `round ${round}`);
    assert.deepEqual(downstreamResponseHeaders([['CONNECTION', 'close'], ['X-A', '1']]), [['X-A', '1']], `round ${round}: Connection alone is dropped too`);
  }
});
