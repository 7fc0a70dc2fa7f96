// Real framework apps from Debian's packages, through /usr/bin/python3: Flask (WSGI)
// and FastAPI (ASGI, detected by "interface": "auto").
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, findPython, request, serve, tempCopy, type ServeProcess } from './harness';

const flaskPython = findPython(['flask']);
const fastapiPython = findPython(['fastapi']);

describe('a real Flask app', { skip: flaskPython ? false : 'no interpreter with flask (apt-get install python3-flask)' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    server = await serve(dir, ['--python', flaskPython!]);
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('renders its template page with links to its static files, which the proxy serves', async () => {
    const page = await request(server.url);
    assert.equal(page.status, 200);
    const css = /href="([^"]+\.css)"/.exec(page.text)?.[1];
    assert.ok(css, page.text);
    const style = await request(new URL(css, server.url).href);
    assert.equal(style.status, 200);
    assert.match(String(style.headers['content-type']), /text\/css/);
  });

  test('its JSON API takes a POST and lists the item', async () => {
    const added = await request(server.url + 'api/items', { method: 'POST', body: JSON.stringify({ name: 'snow ☃' }), headers: { 'Content-Type': 'application/json' } });
    assert.ok(added.status === 200 || added.status === 201, added.text);
    // Each worker keeps its own list: ask until the worker that took the POST answers.
    let found = false;
    for (let i = 0; i < 10 && !found; i++) found = (await request(server.url + 'api/items')).text.includes('snow \\u2603') || (await request(server.url + 'api/items')).text.includes('snow ☃');
    assert.ok(found);
  });

  test('a form POST reaches the app', async () => {
    const reply = await request(server.url + 'echo', { method: 'POST', body: 'name=Ada+Lovelace&note=a%26b', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(reply.status, 200);
    assert.match(reply.text, /Ada Lovelace/);
    assert.match(reply.text, /a&amp;b|a&b/);
  });

  test('Flask sees the forwarding headers the proxy set', async () => {
    const who = JSON.parse((await request(server.url + 'api/whoami', { headers: { 'X-Forwarded-For': '6.6.6.6' } })).text) as Record<string, unknown>;
    assert.equal(JSON.stringify(who).includes('6.6.6.6'), false, JSON.stringify(who));
    assert.ok(JSON.stringify(who).includes('127.0.0.1'));
  });
});

describe('a real FastAPI app (ASGI)', { skip: fastapiPython ? false : 'no interpreter with fastapi (apt-get install python3-fastapi)' }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempCopy(path.join(ROOT, 'test', 'fixtures', 'apps', 'fastapi-app'));
    server = await serve(dir, ['--python', fastapiPython!]);
    await server.waitFor(/worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs its lifespan startup before the first request and answers JSON', async () => {
    const reply = await request(server.url + 'api/info?x=1');
    assert.equal(reply.status, 200);
    const info = JSON.parse(reply.text) as Record<string, unknown>;
    assert.equal(info.lifespan_started, true);
    assert.equal(info.forwarded_for, '127.0.0.1');
    assert.equal(info.path, '/api/info');
    assert.equal(info.query, 'x=1');
  });

  test('receives a 1 MiB body intact', async () => {
    const body = Buffer.alloc(1024 * 1024, 0x5a);
    const reply = JSON.parse((await request(server.url + 'api/echo', { method: 'POST', body })).text) as Record<string, unknown>;
    assert.equal(reply.sha256, createHash('sha256').update(body).digest('hex'));
  });

  test('one ASGI worker serves concurrent slow requests at once', async () => {
    const replies = await Promise.all([1, 2, 3].map(() => request(server.url + 'api/sleep?s=1')));
    const bodies = replies.map((r) => JSON.parse(r.text) as { pid: number; peak: number });
    assert.equal(new Set(bodies.map((b) => b.pid)).size, 1, 'one worker took all three');
    // The app counts the sleeps running at once: all three overlapped in the one worker.
    assert.equal(Math.max(...bodies.map((b) => b.peak)), 3);
  });

  test('a streaming response arrives whole', async () => {
    const reply = await request(server.url + 'api/stream');
    assert.equal(reply.text, 'part 0\npart 1\npart 2\npart 3\n');
  });
});
