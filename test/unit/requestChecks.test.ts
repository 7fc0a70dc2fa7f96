import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import {
  absoluteTarget, checkRequest, isSimpleRequest, isValidHost, parserErrorRefusal, requestLineOf, type RequestHead,
} from '../../server/proxy/requestChecks';
import { admitRequest, isWebSocketUpgrade } from '../../server/proxy/strictFront';
import { upstreamRequestHeaders } from '../../server/proxy/headers';
import type { LimitsConfig } from '../../server/config/types';

const LIMITS = { maxHeaderCount: 100, maxHeaderLineSize: 8192, maxHeaderSize: 32768 };

function head(lines: string, over: Partial<RequestHead> = {}): RequestHead {
  const rawHeaders: string[] = [];
  for (const line of lines.split('\n').filter(Boolean)) {
    const colon = line.indexOf(':');
    rawHeaders.push(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return { method: 'GET', url: '/', httpVersion: '1.1', rawHeaders, ...over };
}

// [what, request head, expected status or undefined (accepted), closes]
const CASES: Array<[string, RequestHead, number | undefined, boolean?]> = [
  ['a plain GET', head('Host: a.test'), undefined],
  ['HTTP/1.0 without Host', head('', { httpVersion: '1.0' }), undefined],
  ['HTTP/2.0 request line', head('Host: a', { httpVersion: '2.0' }), 505, true],
  ['HTTP/0.9 named in the line', head('Host: a', { httpVersion: '0.9' }), 505, true],
  ['request line of 8192 bytes', head('Host: a', { url: '/' + 'a'.repeat(8192 - 14) }), undefined],
  ['request line of 8193 bytes', head('Host: a', { url: '/' + 'a'.repeat(8192 - 13) }), 414, true],
  ['100 header fields', head('Host: a\n' + 'X: 1\n'.repeat(99)), undefined],
  ['101 header fields', head('Host: a\n' + 'X: 1\n'.repeat(100)), 431, true],
  ['a header field of 8192 bytes', head(`Host: a\nX: ${'v'.repeat(8192 - 3)}`), undefined],
  ['a header field of 8193 bytes', head(`Host: a\nX: ${'v'.repeat(8192 - 2)}`), 431, true],
  ['TRACE', head('Host: a\nCookie: s=1', { method: 'TRACE' }), 405, false],
  ['CONNECT', head('Host: a:443', { method: 'CONNECT', url: 'a:443' }), 405, true],
  ['two Host fields', head('Host: a\nHost: b'), 400, true],
  ['no Host on HTTP/1.1', head('Accept: */*'), 400, true],
  ['Host with a space', head('Host: a b'), 400, true],
  ['Host with userinfo', head('Host: u@a'), 400, true],
  ['Host with a port over 65535', head('Host: a:65536'), 400, true],
  ['Host with port 65535', head('Host: a:65535'), undefined],
  ['Host as an IPv6 literal with a port', head('Host: [::1]:8080'), undefined],
  ['Host as a bad IPv6 literal', head('Host: [::g]'), 400, true],
  ['an absolute-form target', head('Host: b', { url: 'http://a.test:8080/p?q=1' }), undefined],
  ['an absolute-form target with userinfo', head('Host: b', { url: 'http://u@a/p' }), 400, true],
  ['an ftp:// target', head('Host: b', { url: 'ftp://a/p' }), 400, true],
  ['an asterisk-form target', head('Host: a', { method: 'OPTIONS', url: '*' }), 400, true],
  ['Content-Length twice', head('Host: a\nContent-Length: 3\nContent-Length: 3', { method: 'POST' }), 400, true],
  ['Content-Length not digits', head('Host: a\nContent-Length: 3x', { method: 'POST' }), 400, true],
  ['Content-Length with Transfer-Encoding', head('Host: a\nContent-Length: 3\nTransfer-Encoding: chunked', { method: 'POST' }), 400, true],
  ['Transfer-Encoding: chunked', head('Host: a\nTransfer-Encoding: chunked', { method: 'POST' }), undefined],
  ['Transfer-Encoding: Chunked (case-insensitive)', head('Host: a\nTransfer-Encoding: Chunked', { method: 'POST' }), undefined],
  ['Transfer-Encoding on HTTP/1.0', head('Host: a\nTransfer-Encoding: chunked', { method: 'POST', httpVersion: '1.0' }), 400, true],
  ['Transfer-Encoding: gzip, chunked', head('Host: a\nTransfer-Encoding: gzip, chunked', { method: 'POST' }), 501, true],
  ['Transfer-Encoding: foo', head('Host: a\nTransfer-Encoding: foo', { method: 'POST' }), 400, true],
  ['Transfer-Encoding: chunked, gzip', head('Host: a\nTransfer-Encoding: chunked, gzip', { method: 'POST' }), 400, true],
  ['Transfer-Encoding: chunked, chunked', head('Host: a\nTransfer-Encoding: chunked, chunked', { method: 'POST' }), 400, true],
  ['two Transfer-Encoding fields', head('Host: a\nTransfer-Encoding: gzip\nTransfer-Encoding: chunked', { method: 'POST' }), 400, true],
];

describe('checkRequest', () => {
  for (const [what, req, status, close] of CASES) {
    test(status ? `answers ${status} to ${what}` : `accepts ${what}`, () => {
      const refusal = checkRequest(req, LIMITS);
      assert.equal(refusal?.status, status, refusal?.reason);
      if (refusal) {
        assert.equal(refusal.close, close);
        assert.ok(refusal.reason.length > 10, 'the reason says what was wrong');
      }
    });
  }

  test('a 405 lists the methods passed on in Allow', () => {
    assert.deepEqual(checkRequest(head('Host: a', { method: 'TRACE' }), LIMITS)?.headers, { Allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' });
  });

  test('a hostile value is shortened on the error page', () => {
    const reason = checkRequest(head(`Host: ${'<'.repeat(5000)}`), LIMITS)!.reason;
    assert.ok(reason.length < 300, reason);
  });

  test('the limits are read from the limits given', () => {
    assert.equal(checkRequest(head('Host: a\nX: 1\nY: 2'), { maxHeaderCount: 2, maxHeaderLineSize: 8192 })?.status, 431);
    assert.equal(checkRequest(head('Host: a', { url: '/abcdefghij' }), { maxHeaderCount: 100, maxHeaderLineSize: 16 })?.status, 414);
  });
});

describe('hosts and targets', () => {
  const VALID = ['localhost', 'a.test:8080', '127.0.0.1', '127.0.0.1:80', '[::1]', '[::1]:443', 'xn--snw-rla.example', 'a_b.test', 'a.test:', '%41.test'];
  const INVALID = ['', ':80', 'a b', 'u@a', 'a/b', 'a\\b', 'a:b:c', 'a:-1', 'a:99999', '[::1', '[::1]x', '<x>', 'a"b', 'a?b', 'a#b', '%4.test'];
  for (const host of VALID) test(`accepts the Host ${JSON.stringify(host)}`, () => assert.equal(isValidHost(host), true));
  for (const host of INVALID) test(`refuses the Host ${JSON.stringify(host)}`, () => assert.equal(isValidHost(host), false));

  test('an absolute-form target splits into authority and origin-form path', () => {
    assert.deepEqual(absoluteTarget('http://a.test:8080/p/q?x=1'), { authority: 'a.test:8080', path: '/p/q?x=1' });
    assert.deepEqual(absoluteTarget('HTTP://a.test'), { authority: 'a.test', path: '/' });
    assert.deepEqual(absoluteTarget('https://a.test?x'), { authority: 'a.test', path: '/?x' });
    assert.equal(absoluteTarget('/p'), undefined);
    assert.equal(absoluteTarget('ftp://a/p'), undefined);
  });

  test('admitRequest rewrites an absolute-form target to its path and its authority into Host', () => {
    const req = { method: 'GET', url: 'http://a.test:8080/p?q', httpVersion: '1.1', rawHeaders: ['Host', 'b.test', 'Accept', '*/*'], headers: { host: 'b.test', accept: '*/*' } };
    const limits = { ...LIMITS } as unknown as LimitsConfig;
    assert.equal(admitRequest(req as unknown as IncomingMessage, limits), undefined);
    assert.equal(req.url, '/p?q');
    assert.deepEqual(req.rawHeaders, ['Host', 'a.test:8080', 'Accept', '*/*']);
    assert.equal(req.headers.host, 'a.test:8080');
  });

  test('only a GET naming websocket is a WebSocket upgrade', () => {
    const up = (method: string, upgrade: string) => ({ method, headers: { upgrade } }) as unknown as IncomingMessage;
    assert.equal(isWebSocketUpgrade(up('GET', 'websocket')), true);
    assert.equal(isWebSocketUpgrade(up('GET', 'WebSocket')), true);
    assert.equal(isWebSocketUpgrade(up('GET', 'h2c')), false);
    assert.equal(isWebSocketUpgrade(up('GET', 'websocketx')), false);
    assert.equal(isWebSocketUpgrade(up('POST', 'websocket')), false);
  });
});

describe('simple requests and parser errors', () => {
  const SIMPLE: Array<[string, boolean]> = [
    ['GET /\r\n', true],
    ['GET /path\n', true],
    ['\r\nGET /\r\n', true],
    ['GET / HTTP/1.1\r\n', false],
    ['GET /', false], // no line end yet: the parser decides
    ['GET\r\n', false],
    ['G(T /\r\n', false],
  ];
  for (const [bytes, simple] of SIMPLE) {
    test(`${JSON.stringify(bytes)} is ${simple ? '' : 'not '}an HTTP/0.9 simple request`, () => assert.equal(isSimpleRequest(bytes), simple));
  }

  test('the request line is read from the bytes the parser failed on', () => {
    assert.equal(requestLineOf(Buffer.from('\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n')), 'GET /x HTTP/1.1');
    assert.equal(requestLineOf(Buffer.from('GET /unfinished')), 'GET /unfinished');
    assert.equal(requestLineOf(undefined), undefined);
  });

  // [code, raw packet, status]
  const ERRORS: Array<[string, string, number]> = [
    ['HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(40000)}`, 414],
    ['HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(40000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
    ['HPE_HEADER_OVERFLOW', `GET / HTTP/1.1\r\nX: ${'a'.repeat(40000)}`, 431],
    ['HPE_HEADER_OVERFLOW', 'aaaaaaaa', 431],
    ['HPE_INVALID_VERSION', 'GET / HTTP/1.2\r\n', 505],
    ['HPE_INVALID_VERSION', 'GET / HTTP/3.0\r\n', 505],
    ['HPE_INVALID_VERSION', 'GET / HTTP/1.1x\r\n', 400],
    ['HPE_INVALID_VERSION', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['HPE_PAUSED_H2_UPGRADE', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505],
    ['HPE_INVALID_METHOD', 'BREW / HTTP/1.1\r\n', 501],
    ['HPE_INVALID_METHOD', 'G(T / HTTP/1.1\r\n', 400],
    ['HPE_INVALID_METHOD', '\x16\x03\x01\x02\x00', 400],
    ['HPE_INVALID_TRANSFER_ENCODING', 'POST / HTTP/1.1\r\n', 400],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 'POST / HTTP/1.1\r\n', 400],
    ['HPE_INVALID_CONTENT_LENGTH', 'POST / HTTP/1.1\r\n', 400],
    ['HPE_INVALID_HEADER_TOKEN', 'GET / HTTP/1.1\r\nX : 1\r\n', 400],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 'POST / HTTP/1.1\r\n', 413],
    ['ERR_HTTP_REQUEST_TIMEOUT', '', 408],
    ['HPE_SOMETHING_NEW', 'GET / HTTP/1.1\r\n', 400],
  ];
  for (const [code, raw, status] of ERRORS) {
    test(`maps ${code} on ${JSON.stringify(raw.slice(0, 24))} to ${status}`, () => {
      const refusal = parserErrorRefusal(code, Buffer.from(raw, 'latin1'), LIMITS);
      assert.equal(refusal.status, status, refusal.reason);
      assert.equal(refusal.close, true, 'after a parse error nothing on the connection can be trusted');
    });
  }
});

describe('headers never forwarded', () => {
  test('Proxy (httpoxy) and names with underscores are dropped for every upstream', () => {
    const raw = ['Host', 'a', 'Proxy', 'http://evil:3128', 'X_Forwarded_For', '6.6.6.6', 'Content_Length', '9', 'X-Ok', '1'];
    const req = { rawHeaders: raw, headers: { host: 'a' } } as unknown as IncomingMessage;
    const names = upstreamRequestHeaders(req, { remoteAddr: '127.0.0.1', scheme: 'http', host: 'a', port: 80 }).map(([n]) => n);
    assert.deepEqual(names, ['host', 'x-ok', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip']);
  });
});
