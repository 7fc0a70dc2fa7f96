import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { devLoopWanted } from '../../server/devloop/devLoop';
import { deviceSummary } from '../../server/devloop/device';
import { acceptsHtml, injectingSink, MAX_HELD_BYTES, scriptTag, skipReason, withScriptTag } from '../../server/devloop/inject';
import type { ServeConfig } from '../../server/config/types';
import type { ResponseSink } from '../../server/upstream/types';

/** A sink that keeps what reaches it: the head, then the bytes in order. */
function collecting() {
  const got = { status: 0, headers: [] as [string, string][], body: Buffer.alloc(0), ended: false };
  const sink: ResponseSink = {
    assigned: () => undefined,
    start: (status, headers) => Object.assign(got, { status, headers }),
    data: (chunk) => void (got.body = Buffer.concat([got.body, chunk])),
    end: () => void (got.ended = true),
    fail: () => undefined,
  };
  return { got, sink };
}

/** What a browser's page load sends (Chrome's navigation Accept). */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

function run(chunks: string[], headers: [string, string][], method = 'GET', reqHeaders: Record<string, string> = {}, status = 200) {
  const { got, sink } = collecting();
  const wrapped = injectingSink({ method, headers: { accept: BROWSER_ACCEPT, ...reqHeaders } } as unknown as IncomingMessage, sink);
  wrapped.start(status, headers);
  for (const c of chunks) wrapped.data(Buffer.from(c, 'utf8'));
  wrapped.end();
  return got;
}

const TAG = scriptTag('/');
const HTML: [string, string][] = [['Content-Type', 'text/html; charset=utf-8']];

test('puts the tag before </body>, even when </BODY> is split across chunks, and raises Content-Length by its size', () => {
  const page = '<html><body><p>snow ☃</p></BODY></html>';
  const length = Buffer.byteLength(page);
  for (let cut = 1; cut < page.length; cut++) {
    const got = run([page.slice(0, cut), page.slice(cut)], [...HTML, ['Content-Length', String(length)]]);
    assert.equal(got.body.toString(), page.replace('</BODY>', `${TAG}</BODY>`), `cut at ${cut}`);
    assert.equal(got.headers.find(([k]) => k === 'Content-Length')?.[1], String(got.body.length));
  }
});

test('a fragment (no </body>, as htmx and Turbo swap in) is left as it was, with or without a length', () => {
  const streamed = run(['<p>hi', '</p>'], HTML);
  assert.equal(streamed.body.toString(), '<p>hi</p>');
  assert.equal(streamed.headers.some(([k]) => k.toLowerCase() === 'content-length'), false);
  assert.equal(streamed.ended, true);
  const sized = run(['<p>hi', '</p>'], [...HTML, ['Content-Length', '9']]);
  assert.equal(sized.body.toString(), '<p>hi</p>');
  assert.deepEqual(sized.headers, [...HTML, ['Content-Length', '9']]);
});

test('a document of a declared length is held until its </body> shows, then its length grows by the tag', () => {
  const page = '<html><body><p>hi</p></body></html>';
  const got = run(['<html><bo', 'dy><p>hi</p></bo', 'dy></html>'], [...HTML, ['Content-Length', String(page.length)], ['ETag', '"abc"']]);
  assert.equal(got.body.toString(), page.replace('</body>', `${TAG}</body>`));
  assert.ok(got.headers.some(([k, v]) => k === 'Content-Length' && Number(v) === page.length + TAG.length));
  assert.ok(got.headers.some(([k, v]) => k === 'ETag' && v === 'W/"abc"'));
});

test('a declared length over the hold limit passes untouched', () => {
  const big = String(MAX_HELD_BYTES + 1);
  const got = run(['<body></body>'], [...HTML, ['Content-Length', big]]);
  assert.equal(got.body.toString(), '<body></body>');
});

test('leaves alone what it cannot or must not edit', () => {
  const cases: [string, [string, string][], string, Record<string, string>, number][] = [
    ['JSON', [['Content-Type', 'application/json']], 'GET', {}, 200],
    ['gzip', [...HTML, ['Content-Encoding', 'gzip']], 'GET', {}, 200],
    ['HEAD', HTML, 'HEAD', {}, 200],
    ['range', HTML, 'GET', { range: 'bytes=0-9' }, 200],
    ['304', HTML, 'GET', {}, 304],
    ['no-transform', [...HTML, ['Cache-Control', 'no-transform']], 'GET', {}, 200],
    ['UTF-16', [['Content-Type', 'text/html; charset=UTF-16']], 'GET', {}, 200],
  ];
  for (const [name, headers, method, reqHeaders, status] of cases) {
    assert.ok(skipReason(method, reqHeaders, status, headers), name);
    const got = run(['<body></body>'], headers, method, reqHeaders, status);
    assert.equal(got.body.toString(), '<body></body>', name);
    assert.deepEqual(got.headers, headers, name);
  }
});

test('a client that does not ask for HTML (curl, fetch(), an API client) gets the page as the app wrote it', () => {
  const page = ['<html><body>hi</body></html>'];
  for (const accept of ['*/*', 'application/json', '']) {
    const got = run(page, [...HTML, ['ETag', '"v1"']], 'GET', { accept });
    assert.equal(got.body.toString(), page[0], `Accept: ${accept}`);
    assert.deepEqual(got.headers, [...HTML, ['ETag', '"v1"']], `Accept: ${accept}`);
  }
  const { sink } = collecting();
  assert.equal(injectingSink({ method: 'GET', headers: {} } as unknown as IncomingMessage, sink), sink, 'no Accept at all: no wrapper either');
  assert.match(run(page, HTML, 'GET', { accept: 'text/html' }).body.toString(), /livereload\.js/);
});

test("carries the page's CSP nonce, and makes a strong ETag weak", () => {
  const got = run(['<body></body>'], [...HTML, ['Content-Security-Policy', "script-src 'nonce-abc123'"], ['ETag', '"v1"']]);
  assert.match(got.body.toString(), /<script src="\/__servestack\/livereload\.js" async nonce="abc123"><\/script><\/body>/);
  assert.deepEqual(got.headers.find(([k]) => k === 'ETag'), ['ETag', 'W/"v1"']);
});

test('the tag names the script under the base path the page is served at', () => {
  assert.equal(scriptTag('/proxy/8080/'), '<script src="/proxy/8080/__servestack/livereload.js" async></script>');
});

test('a whole document held in memory gets the tag before its first </body> in any case; a fragment gets nothing', () => {
  const doc = Buffer.from('<html><body>snow ☃</BODY></html>');
  assert.equal(withScriptTag(doc, TAG)?.toString(), `<html><body>snow ☃${TAG}</BODY></html>`);
  assert.equal(withScriptTag(Buffer.from('<p>fragment</p>'), TAG), undefined);
});

test('</body is found however far in the page it is, short pages and long ones alike, and a lone "</" at the very end is no match', () => {
  for (const before of [0, 1, 200, 255, 256, 257, 5000]) {
    const lead = `<p>${'x'.repeat(before)}</p></b></bo>`;
    const doc = Buffer.from(`${lead}</Body></html>`);
    assert.equal(withScriptTag(doc, TAG)?.toString(), `${lead}${TAG}</Body></html>`, `with ${before} bytes before it`);
    assert.equal(withScriptTag(Buffer.from(`${lead}</bod`), TAG), undefined, `a cut-off tag after ${before} bytes`);
  }
  assert.equal(withScriptTag(Buffer.from('<p>x</p><'), TAG), undefined);
  assert.equal(withScriptTag(Buffer.from('<p>x</'), TAG), undefined);
});

test("an error page's tag carries its status and the count of changes it was made at", () => {
  assert.equal(scriptTag('/', undefined, { status: 503, seen: 7 }), '<script src="/__servestack/livereload.js" async data-servestack-error="503" data-servestack-seen="7"></script>');
});

test('only a browser asking for a page counts as wanting HTML', () => {
  assert.equal(acceptsHtml('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), true);
  assert.equal(acceptsHtml('*/*'), false);
  assert.equal(acceptsHtml('application/json'), false);
  assert.equal(acceptsHtml(undefined), false);
});

test('the developer loop is on for loopback only, and one setting or switch turns it off', () => {
  const config = (host: string, liveReload = true) => ({ listen: { host, port: 8080, pinned: false }, dev: { liveReload, watch: [] } }) as unknown as ServeConfig;
  assert.equal(devLoopWanted(config('127.0.0.1'), {}), true);
  assert.equal(devLoopWanted(config('::1'), {}), true);
  assert.equal(devLoopWanted(config('0.0.0.0'), {}), false);
  assert.equal(devLoopWanted(config('127.0.0.1', false), {}), false);
  assert.equal(devLoopWanted(config('127.0.0.1'), { SERVESTACK_LIVERELOAD: '0' }), false);
  assert.equal(devLoopWanted(config('127.0.0.1'), { NODE_ENV: 'production' }), false);
  assert.equal(devLoopWanted(config('0.0.0.0'), { SERVESTACK_LIVERELOAD: '1' }), true);
  assert.equal(devLoopWanted(config('0.0.0.0', false), { SERVESTACK_LIVERELOAD: '1' }), false);
});

test('a device summary names the browser and the system', () => {
  assert.equal(deviceSummary('Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36'), 'Chrome 126 on Android');
  assert.equal(deviceSummary('Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'), 'Safari 17 on iPhone');
  assert.equal(deviceSummary('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0'), 'Firefox 127 on Windows');
  assert.equal(deviceSummary('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0'), 'Edge 126 on Windows');
  assert.equal(deviceSummary('curl/8.5.0'), 'curl');
  assert.equal(deviceSummary(undefined), 'unknown device');
});

test('a whole answer (one read from the worker) gets the same tag and length in one piece; a fragment and a non-HTML answer pass as they came', () => {
  const whole = (body: string, headers: [string, string][]) => {
    let got: { status: number; headers: [string, string][]; body: Buffer | undefined } | undefined;
    const { sink } = collecting();
    sink.complete = (status, h, b) => void (got = { status, headers: h, body: b });
    injectingSink({ method: 'GET', headers: { accept: BROWSER_ACCEPT } } as unknown as IncomingMessage, sink).complete!(200, headers, Buffer.from(body));
    return got!;
  };
  const page = '<html><body><p>snow ☃</p></body></html>';
  const length = String(Buffer.byteLength(page));
  const doc = whole(page, [...HTML, ['Content-Length', length], ['ETag', '"v1"']]);
  assert.equal(doc.body!.toString(), page.replace('</body>', `${TAG}</body>`));
  assert.deepEqual(doc.headers, [...HTML, ['Content-Length', String(doc.body!.length)], ['ETag', 'W/"v1"']]);
  const streamed = run([page], [...HTML, ['Content-Length', length], ['ETag', '"v1"']]);
  assert.deepEqual([streamed.headers, streamed.body.toString()], [doc.headers, doc.body!.toString()], 'the same as the answer streamed');
  const fragment = whole('<p>swap me</p>', [...HTML, ['Content-Length', '14']]);
  assert.equal(fragment.body!.toString(), '<p>swap me</p>');
  const json = whole('{"a":"</body>"}', [['Content-Type', 'application/json']]);
  assert.equal(json.body!.toString(), '{"a":"</body>"}');
  // Over the hold limit a page passes untouched whole, as it does streamed with its length declared.
  const bigPage = '<html><body>' + 'x'.repeat(MAX_HELD_BYTES) + '</body></html>';
  const bigHead: [string, string][] = [...HTML, ['Content-Length', String(bigPage.length)]];
  const big = whole(bigPage, bigHead);
  assert.deepEqual([big.headers, big.body!.length], [bigHead, bigPage.length]);
  const bigStreamed = run([bigPage], bigHead);
  assert.deepEqual([bigStreamed.headers, bigStreamed.body.length], [bigHead, bigPage.length]);
});
