// The request inspector on a real HTTP server on loopback, wired as the proxy wires it
// (tap as the request arrives, record when it is done): bodies copied as they pass and
// bounded, credentials masked until revealed, the ring bounded, replay to the listener.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { inspectorWanted, MASK, RequestInspector, WATCH_LEASE_MS } from '../../server/control/inspector';
import { ServeStackError } from '../../server/errors';
import { tappedMessageClasses } from '../../server/proxy/tappedMessages';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

describe('request inspector', () => {
  let server: http.Server;
  let port = 0;
  let inspector: RequestInspector;
  const seen: Seen[] = [];

  before(async () => {
    inspector = new RequestInspector({ capacity: 5, maxBodyBytes: 16, listener: () => ({ host: '127.0.0.1', port }), recentLogs: () => [] });
    inspector.watch(); // as the dashboard does when it opens
    server = http.createServer(tappedMessageClasses, (req, res) => {
      inspector.tap(req, res);
      const started = performance.now();
      // Read the body late, as a pool does once a worker is free: the tap must not lose it.
      setImmediate(() => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
          res.writeHead(201, { 'Set-Cookie': 'sid=secret-cookie', 'Content-Type': 'text/plain' });
          res.write('answer: ');
          res.end(Buffer.concat(chunks));
          inspector.record({ route: '/', pool: 'web', status: 201, ms: performance.now() - started, upstreamMs: 1, worker: 'web:7', req, res });
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  function send(method: string, path: string, headers: Record<string, string>, body = ''): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('is on only in development: loopback, not NODE_ENV=production; SERVESTACK_INSPECTOR overrides', () => {
    assert.equal(inspectorWanted('127.0.0.1', {}), true);
    assert.equal(inspectorWanted('::1', {}), true);
    assert.equal(inspectorWanted('0.0.0.0', {}), false);
    assert.equal(inspectorWanted('127.0.0.1', { NODE_ENV: 'production' }), false);
    assert.equal(inspectorWanted('0.0.0.0', { SERVESTACK_INSPECTOR: '1' }), true);
    assert.equal(inspectorWanted('127.0.0.1', { SERVESTACK_INSPECTOR: '0' }), false);
  });

  it('keeps heads and bounded bodies, masks Authorization, Cookie and Set-Cookie until revealed', async () => {
    await send('POST', '/a?x=1', { Authorization: 'Bearer hunter2', Cookie: 'sid=abc', 'X-Other': 'plain' }, 'body of the request!');
    const [summary] = inspector.takeFresh();
    assert.equal(summary.method, 'POST');
    assert.equal(summary.url, '/a?x=1');
    assert.equal(summary.workerId, 7);
    const r = inspector.inspect(summary.id);
    const header = (list: typeof r.requestHeaders, name: string) => list.find((h) => h.name.toLowerCase() === name);
    assert.deepEqual(header(r.requestHeaders, 'authorization'), { name: 'Authorization', value: MASK, masked: true });
    assert.deepEqual(header(r.requestHeaders, 'cookie'), { name: 'Cookie', value: MASK, masked: true });
    assert.deepEqual(header(r.requestHeaders, 'x-other'), { name: 'X-Other', value: 'plain' });
    assert.equal(header(r.responseHeaders, 'set-cookie')?.masked, true);
    assert.ok(!JSON.stringify(r).includes('hunter2') && !JSON.stringify(r).includes('secret-cookie'));
    assert.deepEqual(r.requestBody, { size: 20, kept: 16, truncated: true, text: 'body of the requ' });
    assert.equal(r.responseBody.size, 28);
    assert.equal(r.responseBody.text, 'answer: body of ');
    const revealed = inspector.inspect(summary.id, true);
    assert.equal(header(revealed.requestHeaders, 'authorization')?.value, 'Bearer hunter2');
    assert.equal(header(revealed.responseHeaders, 'set-cookie')?.value, 'sid=secret-cookie');
  });

  it('refuses to replay a cut body as it was, and replays it edited', async () => {
    const [{ id }] = inspector.list(1);
    await assert.rejects(inspector.replay(id), (e: unknown) => e instanceof ServeStackError && e.code === 'CONTROL_BAD_COMMAND' && /only the first 16/.test(e.message));
    seen.length = 0;
    const result = await inspector.replay(id, { body: 'short', headers: [['Authorization', MASK], ['X-Other', 'changed']] });
    assert.equal(result.status, 201);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].body, 'short');
    assert.equal(seen[0].headers.authorization, 'Bearer hunter2', 'a masked value sent back keeps the original');
    assert.equal(seen[0].headers['x-other'], 'changed');
    assert.equal(seen[0].headers['content-length'], '5');
    const replayed = inspector.inspect(result.request!);
    assert.equal(replayed.replayOf, id);
  });

  it('replays a whole request as it was: same method, target, headers and body', async () => {
    await send('PUT', '/b/c?q=%20', { 'Content-Type': 'application/json', 'X-Trace': 't-1' }, '{"a":1}');
    const [{ id }] = inspector.list(1);
    seen.length = 0;
    await inspector.replay(id);
    assert.equal(seen[0].method, 'PUT');
    assert.equal(seen[0].url, '/b/c?q=%20');
    assert.equal(seen[0].body, '{"a":1}');
    assert.equal(seen[0].headers['x-trace'], 't-1');
    assert.equal(seen[0].headers['content-type'], 'application/json');
  });

  it('keeps only the last N requests', async () => {
    for (let i = 0; i < 7; i++) await send('GET', `/n${i}`, {});
    const list = inspector.list();
    assert.equal(list.length, 5);
    assert.equal(list[4].url, '/n6');
    assert.deepEqual(list.map((r) => r.url), ['/n2', '/n3', '/n4', '/n5', '/n6'], 'oldest first');
    assert.deepEqual(inspector.list(2).map((r) => r.url), ['/n5', '/n6']);
    assert.equal(inspector.inspect(list[0].id).url, '/n2', 'the oldest kept is still there');
    assert.throws(() => inspector.inspect(list[0].id - 1), (e: unknown) => e instanceof ServeStackError && e.code === 'CONTROL_UNKNOWN_REQUEST');
    assert.throws(() => inspector.inspect(list[4].id + 1), (e: unknown) => e instanceof ServeStackError && e.code === 'CONTROL_UNKNOWN_REQUEST', 'not yet recorded');
    assert.throws(() => inspector.inspect(1), (e: unknown) => e instanceof ServeStackError && e.code === 'CONTROL_UNKNOWN_REQUEST');
  });
  it('while nobody watches (no dashboard for a few minutes) keeps heads and body sizes, not the bodies', async () => {
    const later = Date.now() + WATCH_LEASE_MS + 1;
    assert.equal(inspector.watched(later), false);
    inspector.watch(Date.now() - WATCH_LEASE_MS - 1); // the lease ran out
    try {
      await send('POST', '/unwatched', { 'X-Other': 'plain' }, 'not kept');
      const [summary] = inspector.list(1);
      const r = inspector.inspect(summary.id);
      assert.equal(r.requestHeaders.find((h) => h.name === 'X-Other')?.value, 'plain');
      assert.deepEqual(r.requestBody, { size: 8, kept: 0, truncated: true, text: '' });
      assert.equal(r.responseBody.size, 16);
      assert.equal(r.responseBody.kept, 0);
    } finally {
      inspector.watch();
    }
  });
});
