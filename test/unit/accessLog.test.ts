import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessLine, seconds, sentBodyLength, timeLocal } from '../../server/proxy/accessLog';

const facts = { remoteAddr: '127.0.0.1', status: 200, bytes: 13, startedAt: 1000, endedAt: 1012.3456 };

test('an access line is NGINX combined, then request time, upstream time and worker', () => {
  const before = timeLocal(Date.now());
  const line = accessLine({ method: 'GET', url: '/a?b=1', httpVersion: '1.1', headers: { referer: 'http://x/', 'user-agent': 'curl/8' } }, { ...facts, upstreamMs: 9.6, worker: 'web:2' });
  const after = timeLocal(Date.now());
  const rest = `"GET /a?b=1 HTTP/1.1" 200 13 "http://x/" "curl/8" rt=0.012 urt=0.010 w=web:2`;
  assert.ok([`127.0.0.1 - - [${before}] ${rest}`, `127.0.0.1 - - [${after}] ${rest}`].includes(line), line);
  assert.match(before, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/);
});

test('missing referer, agent, upstream time and worker show as "-"', () => {
  const line = accessLine({ method: 'HEAD', url: '/', httpVersion: '1.0', headers: {} }, facts);
  assert.match(line, /\] "HEAD \/ HTTP\/1\.0" 200 13 "-" "-" rt=0\.012 urt=- w=-$/);
});

test('quotes, backslashes and control bytes are escaped as NGINX escapes them', () => {
  const line = accessLine({ method: 'GET', url: '/"q"\\', httpVersion: '1.1', headers: { 'user-agent': 'a\x01b"' } }, facts);
  assert.match(line, /"GET \/\\"q\\"\\\\ HTTP\/1\.1" 200 13 "-" "a\\x01b\\"" /);
});

test('bytes from 0x7F up are escaped as \\xHH, as NGINX logs them, so a line stays ASCII', () => {
  // Node hands header bytes over as Latin-1: "☃" in UTF-8 arrives as three characters.
  const agent = Buffer.from('snow ☃ é', 'utf8').toString('latin1');
  const line = accessLine({ method: 'GET', url: '/', httpVersion: '1.1', headers: { 'user-agent': agent, referer: 'r\u00ff\u2603\u{1F600}' } }, facts);
  assert.match(line, / "r\\xFF\\xE2\\x98\\x83\\xF0\\x9F\\x98\\x80" "snow \\xE2\\x98\\x83 \\xC3\\xA9" /);
  assert.match(line, /^[\x20-\x7e]*$/);
});

test('a request line the parser could not split is logged as received', () => {
  const line = accessLine({ httpVersion: '1.1', headers: {} }, { ...facts, status: 400, bytes: 0, requestLine: 'GARBAGE\x7f' });
  assert.match(line, /\] "GARBAGE\\x7F" 400 0 "-" "-" /);
});

test('lines one after another share nothing', () => {
  const a = accessLine({ method: 'GET', url: '/one', httpVersion: '1.1', headers: { 'user-agent': 'A' } }, { ...facts, worker: 'p:1' });
  const b = accessLine({ method: 'POST', url: '/two', httpVersion: '1.1', headers: {} }, { ...facts, requestLine: undefined });
  assert.match(a, /"GET \/one HTTP\/1\.1" .* "A" .* w=p:1$/);
  assert.match(b, /"POST \/two HTTP\/1\.1" .* "-" "-" .* w=-$/);
});

test('times are seconds with three decimals, rounded to the millisecond, as NGINX writes $request_time', () => {
  const cases: Array<[number, string]> = [[0, '0.000'], [0.4, '0.000'], [0.6, '0.001'], [4.4, '0.004'], [12, '0.012'], [123.4, '0.123'], [999.6, '1.000'], [1234.5, '1.235'], [61_000, '61.000']];
  for (const [ms, text] of cases) assert.equal(seconds(ms), text, `${ms} ms`);
  for (let ms = 0; ms < 5000; ms += 0.37) assert.equal(Number(seconds(ms)), Math.round(ms) / 1000, `${ms} ms`);
  assert.equal(seconds(-2), '-0.002');
});

test('the logged body length is what the head declared, 0 for HEAD, 304 and a chunked body', async () => {
  const http = await import('node:http');
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    res.on('finish', () => seen.set(`${req.method} ${req.url}`, sentBodyLength(req, res)));
    if (req.url === '/declared') res.writeHead(200, ['Content-Length', '5', 'Content-Type', 'text/plain']).end('hello');
    else if (req.url === '/implicit') res.end('implicit body');
    else if (req.url === '/set') res.setHeader('Content-Length', '3').end('abc');
    else if (req.url === '/chunked') { res.write('a'); res.end('b'); }
    else res.writeHead(304).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    for (const [method, path] of [['GET', '/declared'], ['HEAD', '/declared'], ['GET', '/implicit'], ['GET', '/set'], ['GET', '/chunked'], ['GET', '/not-modified']]) {
      await fetch(`http://127.0.0.1:${port}${path}`, { method }).then((r) => r.arrayBuffer());
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(Object.fromEntries(seen), {
      'GET /declared': 5, 'HEAD /declared': 0, 'GET /implicit': 13, 'GET /set': 3, 'GET /chunked': 0, 'GET /not-modified': 0,
    });
  } finally {
    server.close();
  }
});
