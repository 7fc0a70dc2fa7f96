// Behind a front and on the network, over real sockets on loopback: the code-server
// /absproxy/ prefix (--path-prefix), X-Forwarded-Prefix from a trusted front only, a
// named folder (NAME.localhost), the stable ready line, and "Serve on my network" with
// ::1 standing in for the LAN address (tests bind loopback only).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stateFilePath } from '../../server/control/stateFile';
import { ROOT, findPython, request, serve, tempCopy, tempDir, type ServeProcess } from './harness';

const flaskPython = findPython(['flask']);
const python = findPython([]);

function withConfig(dir: string, edit: (config: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'servestack.json');
  const text = readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '').replace(/\/\/[^"\n]*$/gm, '');
  const config = JSON.parse(text) as Record<string, unknown>;
  edit(config);
  writeFileSync(file, JSON.stringify(config, null, 2));
}

const cssLink = (html: string) => /href="([^"]+\.css)"/.exec(html)?.[1];
const whoami = async (url: string, headers: Record<string, string> = {}) => JSON.parse((await request(url, { headers })).text) as {
  scheme: string; host: string; url: string; forwarded: Record<string, string>;
};

describe('Flask behind code-server /absproxy/ and behind other fronts', { skip: flaskPython ? false : 'no interpreter with flask (apt-get install python3-flask)' }, () => {
  let server: ServeProcess;
  let dir: string;
  let prefix: string;
  before(async () => {
    dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    withConfig(dir, (c) => { c.trustedProxies = ['::1']; c.name = 'shop'; });
    // ::1 is a second listener (as the LAN one is), so one server has an untrusted and a trusted peer.
    server = await serve(dir, ['--python', flaskPython!, '--path-prefix', '/absproxy/{port}', '--lan-address', '::1']);
    await server.waitFor(/ServeStack ready: \S+/);
    prefix = `/absproxy/${server.port}`;
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('under the prefix, url_for builds prefixed links and the prefixed stylesheet loads', async () => {
    const page = await request(`${server.url.replace(/\/$/, '')}${prefix}/`);
    assert.equal(page.status, 200, page.text);
    const css = cssLink(page.text);
    assert.ok(css?.startsWith(`${prefix}/static/`), `link ${css} in ${page.text.slice(0, 300)}`);
    const style = await request(new URL(css!, server.url).href);
    assert.equal(style.status, 200);
    assert.match(String(style.headers['content-type']), /text\/css/);
    const me = await whoami(`${server.url.replace(/\/$/, '')}${prefix}/api/whoami`);
    assert.equal(new URL(me.url).pathname, `${prefix}/api/whoami`);
  });

  test('the bare prefix redirects to the prefix with a slash; the root still serves without a prefix', async () => {
    const bare = await request(`${server.url.replace(/\/$/, '')}${prefix}?x=1`);
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, `${prefix}/?x=1`);
    const page = await request(server.url);
    assert.equal(page.status, 200);
    assert.ok(cssLink(page.text)?.startsWith('/static/'), cssLink(page.text));
  });

  test('forwarding headers from a peer not in trustedProxies (127.0.0.1 here) are dropped', async () => {
    const spoof = { 'X-Forwarded-Prefix': '/evil', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https' };
    const page = await request(server.url, { headers: spoof });
    assert.ok(cssLink(page.text)?.startsWith('/static/'), cssLink(page.text));
    const me = await whoami(server.url + 'api/whoami', spoof);
    assert.equal(me.scheme, 'http');
    assert.equal(me.forwarded['X-Forwarded-For'], '127.0.0.1');
    assert.notEqual(me.forwarded['X-Forwarded-Host'], 'evil.example');
    assert.equal(me.forwarded['X-Forwarded-Prefix'], undefined);
  });

  test('from a trusted peer (::1), X-Forwarded-Prefix becomes SCRIPT_NAME and the other claims are kept', async () => {
    const viaV6 = `http://[::1]:${server.port}/`;
    const headers = { 'X-Forwarded-Prefix': '/app/', 'X-Forwarded-Host': 'example.test', 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' };
    const page = await request(viaV6, { headers });
    assert.ok(cssLink(page.text)?.startsWith('/app/static/'), cssLink(page.text));
    const me = await whoami(viaV6 + 'api/whoami', headers);
    assert.equal(me.forwarded['X-Forwarded-For'], '203.0.113.7, ::1');
    assert.equal(me.forwarded['X-Forwarded-Host'], 'example.test');
    assert.equal(me.forwarded['X-Forwarded-Proto'], 'https');
    assert.equal(me.scheme, 'https');
    // A prefix with a dot segment is not a mount point: ignored.
    const dotted = await request(viaV6, { headers: { 'X-Forwarded-Prefix': '/a/../b' } });
    assert.ok(cssLink(dotted.text)?.startsWith('/static/'), cssLink(dotted.text));
  });

  test('a named folder prints its NAME.localhost URL as the ready line and answers that Host', async () => {
    assert.match(server.output(), new RegExp(`^ServeStack ready: http://shop\\.localhost:${server.port}/$`, 'm'));
    const page = await request(server.url, { headers: { Host: `shop.localhost:${server.port}` } });
    assert.equal(page.status, 200);
    assert.match(page.text, /Rendered by worker <strong id="pid">\d+</);
  });
});

describe('an ASGI app under the prefix gets root_path', { skip: python ? false : 'no python3' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'asgi.py'), [
      'import json',
      'async def app(scope, receive, send):',
      '    if scope["type"] != "http":',
      '        return',
      '    body = json.dumps({"root_path": scope["root_path"], "path": scope["path"]}).encode()',
      '    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})',
      '    await send({"type": "http.response.body", "body": body})',
      '',
    ].join('\n'));
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'asgi:app', interface: 'asgi', workers: 1 } } }));
    server = await serve(dir, ['--python', python!, '--path-prefix', '/absproxy/{port}']);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('root_path is the prefix and path is below it; without the prefix root_path is empty', async () => {
    const under = JSON.parse((await request(`${server.url}absproxy/${server.port}/items?q=1`)).text);
    assert.deepEqual(under, { root_path: `/absproxy/${server.port}`, path: '/items' });
    const plain = JSON.parse((await request(`${server.url}items`)).text);
    assert.deepEqual(plain, { root_path: '', path: '/items' });
  });
});

describe('Serve on my network (::1 standing in for the LAN address)', { skip: python ? false : 'no python3' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempCopy(path.join(ROOT, 'examples', 'hello'));
    server = await serve(dir, ['--python', python!, '--lan-address', '::1']);
    await server.waitFor(/ServeStack ready: \S+/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the same port answers on the network address too, and says so with a warning', async () => {
    const lan = new RegExp(`^ServeStack on your network: http://\\[::1\\]:${server.port}/ \\(anyone on this network can open it\\)$`, 'm');
    assert.match(server.output(), lan);
    await server.waitFor(/serving on the network at .*anyone on this network can open the app \(the control channel stays on loopback\)/);
    const viaLoopback = await request(server.url);
    const viaLan = await request(`http://[::1]:${server.port}/`);
    assert.equal(viaLoopback.status, 200);
    assert.equal(viaLan.status, viaLoopback.status);
    assert.equal(viaLan.text.length > 0, true);
  });

  test('the control channel does not listen on the network address', async () => {
    const state = JSON.parse(readFileSync(stateFilePath(dir, { XDG_RUNTIME_DIR: server.runtimeDir }), 'utf8')) as { controlPort: number };
    await assert.rejects(request(`http://[::1]:${state.controlPort}/`), /ECONNREFUSED/);
    const onLoopback = await request(`http://127.0.0.1:${state.controlPort}/`);
    assert.ok(onLoopback.status >= 400, `the control channel answers ${onLoopback.status} without its token`);
  });

  test('a LAN address the machine does not have is a clear start error', async () => {
    const bad = await serve(dir, ['--python', python!, '--lan-address', '192.0.2.1']).then(
      async (s) => { await s.stop(); return undefined; },
      (error: Error) => error.message,
    );
    assert.match(bad ?? 'it started', /could not also listen on 192\.0\.2\.1:\d+: .*EADDRNOTAVAIL/);
  });
});
