// The control channel against an in-memory target: who is refused before any WebSocket
// exists, the snapshot on connect, a round trip of every command, error replies that
// keep the connection, events to every client, and back-pressure on a client that
// does not read.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connectControl, type ControlClient } from '../../server/control/client';
import { HARD_BUFFER_LIMIT, startControlServer, type ControlServer } from '../../server/control/server';
import type { Metrics } from '../../server/control/metrics';
import { ServeStackError } from '../../server/errors';
import type { ControlEvent, MetricsSample } from '../../server/protocol';
import { createFakeTarget, type FakeTarget } from './controlFakeTarget';

/** Send a WebSocket upgrade request by hand; resolves with the HTTP status (101 when upgraded). */
function upgradeStatus(port: number, headers: Record<string, string>, path = '/control'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}


/** A raw WebSocket (no client library) with the token header; collects every message. */
function rawSocket(server: ControlServer): Promise<{ ws: WebSocket; messages: ControlEvent[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url, ['servestack.v1'], { headers: { Authorization: `Bearer ${server.token}` } });
    const messages: ControlEvent[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as ControlEvent));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('error', reject);
  });
}

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('control server: refusals before any WebSocket', () => {
  let target: FakeTarget;
  let server: ControlServer;
  let host: string;
  before(async () => {
    target = createFakeTarget();
    server = await startControlServer(target);
    host = `127.0.0.1:${server.port}`;
  });
  after(() => server.close());

  it('listens on loopback with a 64-hex-digit token and a ws:// URL', () => {
    assert.match(server.token, /^[0-9a-f]{64}$/);
    assert.equal(server.url, `ws://127.0.0.1:${server.port}/control`);
  });

  it('answers /healthz with 200 and no information, without a token', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok\n');
  });

  it('answers 426 to a plain HTTP request for /control and 404 elsewhere', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/control`)).status, 426);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/`)).status, 404);
  });

  it('refuses an upgrade without a token with 401', async () => {
    const r = await upgradeStatus(server.port, { Host: host });
    assert.equal(r.status, 401);
    assert.match(r.body, /token is required/);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="servestack"');
  });

  it('refuses a wrong token with 401, in the header or the subprotocol', async () => {
    const wrong = 'f'.repeat(64);
    assert.equal((await upgradeStatus(server.port, { Host: host, Authorization: `Bearer ${wrong}` })).status, 401);
    assert.equal((await upgradeStatus(server.port, { Host: host, 'Sec-WebSocket-Protocol': `servestack.v1, servestack.token.${wrong}` })).status, 401);
    assert.equal((await upgradeStatus(server.port, { Host: host, Authorization: `Bearer ${server.token.slice(0, 63)}` })).status, 401);
  });

  it('does not take a token from the query string', async () => {
    const r = await upgradeStatus(server.port, { Host: host }, `/control?token=${server.token}`);
    assert.equal(r.status, 401);
  });

  it('refuses a foreign Origin with 403 even with the right token (cross-site WebSocket hijacking)', async () => {
    for (const origin of ['http://evil.example', `http://evil.example:${server.port}`, 'null', `https://127.0.0.1:${server.port}`, `http://127.0.0.1:${server.port + 1}`]) {
      const r = await upgradeStatus(server.port, { Host: host, Origin: origin, Authorization: `Bearer ${server.token}` });
      assert.equal(r.status, 403, origin);
    }
  });

  it('refuses a Host that is not loopback with the control port with 403 (DNS rebinding)', async () => {
    for (const h of [`evil.example:${server.port}`, '127.0.0.1', `127.0.0.1:${server.port + 1}`, `localhost.evil.example:${server.port}`, `127.0.0.1:${server.port}@evil.example`]) {
      const r = await upgradeStatus(server.port, { Host: h, Authorization: `Bearer ${server.token}` });
      assert.equal(r.status, 403, h);
    }
  });

  it('refuses an upgrade on another path with 404', async () => {
    const r = await upgradeStatus(server.port, { Host: host, Authorization: `Bearer ${server.token}` }, '/other');
    assert.equal(r.status, 404);
  });

  it('accepts the token in the header, from loopback names', async () => {
    for (const h of [host, `localhost:${server.port}`]) {
      const r = await upgradeStatus(server.port, { Host: h, Authorization: `Bearer ${server.token}` });
      assert.equal(r.status, 101, h);
    }
  });

  it('accepts a browser-style client: own Origin, token as subprotocol, and selects servestack.v1 (never the token)', async () => {
    const r = await upgradeStatus(server.port, {
      Host: host,
      Origin: `http://127.0.0.1:${server.port}`,
      'Sec-WebSocket-Protocol': `servestack.v1, servestack.token.${server.token}`,
    });
    assert.equal(r.status, 101);
    assert.equal(r.headers['sec-websocket-protocol'], 'servestack.v1');
  });

  it('the client library reports a wrong token as CONTROL_UNAUTHORIZED', async () => {
    await assert.rejects(connectControl({ port: server.port, token: 'a'.repeat(64) }), (err: unknown) => {
      assert.ok(err instanceof ServeStackError);
      assert.equal(err.code, 'CONTROL_UNAUTHORIZED');
      assert.match(err.message, /401/);
      return true;
    });
  });
});

describe('control server: commands and events', () => {
  let target: FakeTarget;
  let server: ControlServer;
  let client: ControlClient;
  before(async () => {
    target = createFakeTarget();
    server = await startControlServer(target);
    client = await connectControl({ port: server.port, token: server.token });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  it('sends a snapshot on connect', () => {
    assert.equal(client.snapshot.protocol, 1);
    assert.deepEqual(
      client.snapshot.pools.map((p) => p.name),
      ['web'],
    );
    assert.equal(client.snapshot.workers.length, 2);
    assert.equal(client.snapshot.routes[0].path, '/');
  });

  it('status returns a snapshot', async () => {
    const s = await client.request({ type: 'status' });
    assert.equal(s.server.dir, '/srv/app');
    assert.equal(s.workers.length, 2);
  });

  it('scale changes the count and streams worker and pool events', async () => {
    const poolEvent = client.waitForEvent((e) => e.type === 'pool');
    assert.equal(await client.request({ type: 'scale', workers: 3 }), undefined);
    const e = await poolEvent;
    assert.equal(e.type === 'pool' && e.pool.wanted, 3);
    assert.deepEqual(target.calls.at(-1), { name: 'scale', args: [undefined, 3] });
    assert.equal((await client.request({ type: 'status' })).workers.length, 3);
    await client.request({ type: 'scale', pool: 'web', workers: 2 });
    assert.equal((await client.request({ type: 'status' })).workers.length, 2);
  });

  it('reload, restartWorker and killWorker reach the target', async () => {
    await client.request({ type: 'reload' });
    await client.request({ type: 'reload', pool: 'web' });
    const [first] = (await client.request({ type: 'status' })).workers;
    await client.request({ type: 'restartWorker', worker: first.id });
    const second = (await client.request({ type: 'status' })).workers[0];
    await client.request({ type: 'killWorker', worker: second.id });
    assert.deepEqual(
      target.calls.slice(-4).map((c) => [c.name, ...c.args]),
      [
        ['reload', undefined],
        ['reload', 'web'],
        ['restartWorker', first.id],
        ['killWorker', second.id],
      ],
    );
  });

  it('applyConfig answers applied for a good config and not applied, with diagnostics, for a bad one', async () => {
    const good = await client.request({ type: 'applyConfig', text: '{"pools":{}}' });
    assert.deepEqual(good, { applied: true, diagnostics: [] });
    const bad = await client.request({ type: 'applyConfig', text: '{"pools":' });
    assert.equal(bad.applied, false);
    assert.equal(bad.diagnostics[0].code, 'CONFIG_SYNTAX');
    assert.equal(target.configText, '{"pools":{}}');
  });

  it('logs returns the recent lines, limited to the count asked', async () => {
    for (let i = 0; i < 5; i++) target.log(`line ${i}`);
    const { lines } = await client.request({ type: 'logs', lines: 3 });
    assert.deepEqual(
      lines.map((l) => l.text),
      ['line 2', 'line 3', 'line 4'],
    );
  });

  it('a command naming an unknown pool or worker is an error reply with the target\'s code and hint', async () => {
    await assert.rejects(client.request({ type: 'scale', pool: 'nope', workers: 1 }), (err: unknown) => {
      assert.ok(err instanceof ServeStackError);
      assert.equal(err.code, 'CONTROL_UNKNOWN_POOL');
      assert.equal(err.hint, 'see servestack status');
      return true;
    });
    await assert.rejects(client.request({ type: 'killWorker', worker: 9999 }), { code: 'CONTROL_UNKNOWN_WORKER' });
  });

  it('unknown, malformed and binary commands are error replies and the connection stays', async () => {
    const { ws, messages } = await rawSocket(server);
    try {
      ws.send(JSON.stringify({ id: 7, type: 'selfDestruct' }));
      ws.send('{not json');
      ws.send(JSON.stringify({ id: 8, type: 'scale', workers: -1 }));
      ws.send(JSON.stringify({ id: 9, type: 'scale', workers: 'many' }));
      ws.send(JSON.stringify({ type: 'status' }));
      ws.send(JSON.stringify([1, 2]));
      ws.send(Buffer.from([1, 2, 3]), { binary: true });
      ws.send(JSON.stringify({ id: 10, type: 'status' }));
      const replies = await waitFor(() => {
        const r = messages.filter((m): m is Extract<ControlEvent, { type: 'reply' }> => m.type === 'reply');
        return r.length >= 8 ? r : undefined;
      });
      const errors = replies.filter((r) => !r.ok);
      assert.equal(errors.length, 7);
      for (const r of errors) assert.equal(!r.ok && r.error.code, 'CONTROL_BAD_COMMAND');
      const byId = new Map(replies.map((r) => [r.id, r]));
      const unknown = byId.get(7);
      assert.ok(unknown && !unknown.ok);
      assert.match(unknown.error.message, /unknown command "selfDestruct"/);
      const negative = byId.get(8);
      assert.ok(negative && !negative.ok && /"workers" must be an integer/.test(negative.error.message));
      assert.equal(byId.get(10)?.ok, true);
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally {
      ws.close();
    }
  });

  it('streams events to every client', async () => {
    const other = await connectControl({ port: server.port, token: server.token });
    try {
      const a = client.waitForEvent((e) => e.type === 'log' && e.line.text === 'to all');
      const b = other.waitForEvent((e) => e.type === 'log' && e.line.text === 'to all');
      target.log('to all');
      await Promise.all([a, b]);
    } finally {
      await other.close();
    }
  });

  it('a client that disconnects is forgotten', async () => {
    const other = await connectControl({ port: server.port, token: server.token });
    assert.equal(server.clientCount(), 2);
    await other.close();
    await waitFor(() => (server.clientCount() === 1 ? true : undefined));
  });
});

describe('control server: stop, metrics, back-pressure, close', () => {
  it('stop replies before the target stops, then the target stops', async () => {
    const target = createFakeTarget();
    const server = await startControlServer(target);
    target.onStop = () => server.close();
    const client = await connectControl({ port: server.port, token: server.token });
    try {
      const stopping = client.waitForEvent((e) => e.type === 'stopping');
      assert.equal(await client.request({ type: 'stop' }), undefined);
      await stopping;
      const { code } = await client.closed;
      assert.equal(code, 1001);
      assert.equal(target.stopped, true);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('streams a metrics sample once a second when given metrics', async () => {
    const target = createFakeTarget();
    const sample: MetricsSample = { time: 1, rps: 3, status: { '2xx': 3, '3xx': 0, '4xx': 0, '5xx': 0 }, routes: {}, pools: {} };
    let samples = 0;
    const metrics: Metrics = {
      record: () => undefined,
      recordRequest: () => undefined,
      setQueueDepthSource: () => undefined,
      sample: () => {
        samples++;
        return sample;
      },
    };
    const server = await startControlServer(target, { metrics });
    const client = await connectControl({ port: server.port, token: server.token });
    try {
      const e = await client.waitForEvent((x) => x.type === 'metrics', 3000);
      assert.deepEqual(e.type === 'metrics' && e.metrics, sample);
      assert.ok(samples >= 1);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('drops log events for a client that does not read, but never its other events, and tells it', async () => {
    const target = createFakeTarget();
    const server = await startControlServer(target);
    const { ws, messages } = await rawSocket(server);
    try {
      await waitFor(() => (messages.length >= 1 ? true : undefined)); // the snapshot
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      socket.pause();
      const big = 'x'.repeat(64 * 1024);
      const emitted = 200; // 12.5 MiB: far above the soft limit, below the hard one
      assert.ok(emitted * big.length < HARD_BUFFER_LIMIT);
      for (let i = 0; i < emitted; i++) target.log(big);
      target.emit({ type: 'pool', pool: { name: 'web', kind: 'python', wanted: 5, state: 'running' } });
      socket.resume();
      // The pool event was queued behind everything buffered: once it arrives the buffer is empty.
      await waitFor(() => (messages.some((m) => m.type === 'pool') ? true : undefined), 20_000);
      target.log('after');
      await waitFor(() => (messages.some((m) => m.type === 'log' && m.line.text === 'after') ? true : undefined), 20_000);
      const logs = messages.filter((m) => m.type === 'log' && m.line.text === big).length;
      assert.ok(logs < emitted, `all ${emitted} log events were sent to a client that did not read`);
      assert.ok(messages.some((m) => m.type === 'pool'), 'the pool event was dropped');
      assert.ok(messages.some((m) => m.type === 'log' && /events were dropped/.test(m.line.text)), 'no drop notice');
    } finally {
      ws.terminate();
      await server.close();
    }
  });

  it('close() ends clients with 1001, stops listening and unsubscribes from the target', async () => {
    const target = createFakeTarget();
    const server = await startControlServer(target);
    const client = await connectControl({ port: server.port, token: server.token });
    assert.equal(target.listenerCount(), 1);
    await server.close();
    assert.equal((await client.closed).code, 1001);
    assert.equal(target.listenerCount(), 0);
    await assert.rejects(connectControl({ port: server.port, token: server.token }), { code: 'CONTROL_CONNECTION_FAILED' });
  });

  it('refuses to listen anywhere but loopback', async () => {
    await assert.rejects(startControlServer(createFakeTarget(), { host: '0.0.0.0' }), /loopback only/);
  });
});
