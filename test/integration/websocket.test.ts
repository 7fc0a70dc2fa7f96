// WebSockets to a Python pool: a real FastAPI app (Debian's python3-fastapi, through
// /usr/bin/python3) run by ServeStack's own ASGI runtime, and a `ws` client through the
// proxy. Echo of text and binary, close codes both ways, subprotocol and accept headers,
// refusal before accept (403), the message limit (1009), back-pressure (a paused client
// pauses the app, not the worker), a rolling reload ending an open socket with 1001, and
// the 501 of a WSGI pool.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { CLI, eventually, findPython, request, serve, tempDir, type ServeProcess } from './harness';

const fastapiPython = findPython(['fastapi']);
const python = findPython();

const APP = `
import asyncio, os
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
closes = []          # close codes the app saw, in order
flood = {"sent": 0, "done": False}
go = asyncio.Event()
WORKER = os.environ.get("SERVESTACK_WORKER_ID", "?")

@app.get("/hello")
async def hello():
    return {"hello": "world", "worker": WORKER}

@app.get("/closes")
async def get_closes():
    return closes

@app.get("/flood")
async def get_flood():
    return flood

@app.websocket("/ws/echo")
async def echo(ws: WebSocket):
    offered = ws.scope["subprotocols"]
    await ws.accept(subprotocol="chat.v1" if "chat.v1" in offered else None, headers=[(b"x-app-said", b"hello")])
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                closes.append(message["code"])
                return
            text = message.get("text")
            if text == "close-me":
                await ws.close(code=4001, reason="you asked")
                return
            if text == "worker":
                await ws.send_text(WORKER)
            elif text is not None:
                await ws.send_text("echo:" + text)
            else:
                await ws.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect as gone:
        closes.append(gone.code)

@app.get("/go")
async def set_go():
    go.set()
    return {"go": True}

@app.websocket("/ws/slow-reader")
async def slow_reader(ws: WebSocket):
    await ws.accept()
    await go.wait()  # reads nothing until the test says so
    count, total = 0, 0
    expected = int(ws.query_params["count"])
    while count < expected:
        data = await ws.receive_bytes()
        count, total = count + 1, total + len(data)
    await ws.send_json({"count": count, "total": total})

@app.websocket("/ws/reject")
async def reject(ws: WebSocket):
    await ws.close(code=1008)

@app.websocket("/ws/flood")
async def flood_sender(ws: WebSocket):
    await ws.accept()
    count = int(ws.query_params["count"])
    size = int(ws.query_params["size"])
    flood["sent"] = 0
    flood["done"] = False
    for i in range(count):
        await ws.send_bytes(i.to_bytes(4, "big") * (size // 4))
        flood["sent"] = i + 1
    flood["done"] = True
    await ws.close()
`;

function open(url: string, protocols?: string[]): Promise<{ ws: WebSocket; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    let headers: Record<string, string | string[] | undefined> = {};
    ws.once('upgrade', (res) => (headers = res.headers));
    ws.once('open', () => resolve({ ws, headers }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

/** The refused handshake's status and body. */
function refused(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => reject(new Error('the handshake was accepted')));
    ws.on('error', () => undefined);
  });
}

/**
 * A count that has stopped moving: the same value, above 0, over ten polls in a row (a
 * second). Not a timed assertion: what is asserted is how far the count got, which
 * without back-pressure is the end.
 */
async function stalled(read: () => number | Promise<number>, what: string): Promise<number> {
  let last = -1;
  let same = 0;
  return eventually(async () => {
    const now = await read();
    same = now === last && now > 0 ? same + 1 : 0;
    last = now;
    return same >= 10 ? now : 0;
  }, 60_000, what);
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('WebSockets to a FastAPI app', { skip: fastapiPython ? false : 'no interpreter with fastapi (apt-get install python3-fastapi)', timeout: 180_000 }, () => {
  let server: ServeProcess;
  let dir: string;
  let wsUrl: string;
  before(async () => {
    dir = tempDir();
    writeFileSync(path.join(dir, 'app.py'), APP);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { web: { app: 'app:app', interface: 'asgi', workers: 1, timeout: '3s' } },
      routes: [{ path: '/', pool: 'web' }],
      limits: { maxWebSocketMessageSize: '4m' },
    }));
    server = await serve(dir, ['--python', fastapiPython!]);
    await server.waitFor(/worker \d+ ready/);
    wsUrl = server.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('echoes text and binary messages, with the subprotocol and headers the app accepted with', async () => {
    const { ws, headers } = await open(wsUrl + 'ws/echo', ['other', 'chat.v1']);
    try {
      assert.equal(ws.protocol, 'chat.v1');
      assert.equal(headers['x-app-said'], 'hello');
      ws.send('hi ☃');
      const text = await nextMessage(ws);
      assert.equal(text.binary, false);
      assert.equal(text.data.toString('utf8'), 'echo:hi ☃');
      const bytes = Buffer.from([0, 1, 2, 255, 254]);
      ws.send(bytes);
      const binary = await nextMessage(ws);
      assert.equal(binary.binary, true);
      assert.deepEqual(binary.data, Buffer.from([254, 255, 2, 1, 0]));
      // 3 MiB, under the 4 MiB limit, whole both ways.
      const big = Buffer.alloc(3 * 1024 * 1024, 7);
      big[0] = 1;
      ws.send(big);
      const back = await nextMessage(ws);
      assert.equal(back.data.length, big.length);
      assert.equal(back.data[back.data.length - 1], 1);
      // The front answers pings itself.
      const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
      ws.ping('are you there');
      assert.equal((await pong).toString(), 'are you there');
    } finally {
      ws.close();
    }
  });

  test("the app's close code and reason reach the client, and the client's code reaches the app", async () => {
    const first = await open(wsUrl + 'ws/echo');
    const byApp = closed(first.ws);
    first.ws.send('close-me');
    assert.deepEqual(await byApp, { code: 4001, reason: 'you asked' });

    const second = await open(wsUrl + 'ws/echo');
    const done = closed(second.ws);
    second.ws.close(4321, 'bye');
    await done;
    await eventually(async () => (JSON.parse((await request(server.url + 'closes')).text) as number[]).includes(4321), 10_000, 'the app to see code 4321');
    // One access line per WebSocket, when it ends: 101 and its bytes.
    await server.waitFor(/"GET \/ws\/echo HTTP\/1\.1" 101 \d+ .* w=web:\d+/);
  });

  test('an app that closes before accepting refuses the handshake with 403', async () => {
    const { status } = await refused(wsUrl + 'ws/reject');
    assert.equal(status, 403);
  });

  test('a client message over limits.maxWebSocketMessageSize closes the socket with 1009', async () => {
    const { ws } = await open(wsUrl + 'ws/echo');
    const done = closed(ws);
    ws.send(Buffer.alloc(5 * 1024 * 1024));
    assert.equal((await done).code, 1009);
  });

  test('a paused client pauses the app\'s sends, not the worker: HTTP on other connections is answered meanwhile', async () => {
    const count = 256;
    const size = 256 * 1024; // 64 MiB in all
    const { ws } = await open(wsUrl + `ws/flood?count=${count}&size=${size}`);
    ws.pause(); // read nothing: the kernel buffers fill, then the front's
    try {
      // The app's sends stall well short of the end (its sends wait on the front's Pause)…
      const stuck = await stalled(async () => (JSON.parse((await request(server.url + 'flood')).text) as { sent: number }).sent, 'the app to stall');
      assert.ok(stuck < count / 2, `the app sent ${stuck} of ${count} messages to a client that reads nothing`);
      // …while the same worker answers HTTP.
      const hello = await request(server.url + 'hello');
      assert.equal(hello.status, 200);
      assert.match(hello.text, /world/);
      // Reading again, every message arrives, whole and in order.
      let received = 0;
      const all = new Promise<void>((resolve, reject) => {
        ws.on('message', (data: Buffer) => {
          if (data.length !== size || data.readUInt32BE(0) !== received) reject(new Error(`message ${received} is wrong`));
          received++;
          if (received === count) resolve();
        });
      });
      const done = closed(ws);
      ws.resume();
      await all;
      assert.equal((await done).code, 1000);
      assert.equal((JSON.parse((await request(server.url + 'flood')).text) as { done: boolean }).done, true);
    } finally {
      ws.terminate();
    }
  });

  test('a fast client does not overrun an app that reads slowly: the front stops reading it', async () => {
    const count = 64;
    const size = 1024 * 1024; // 64 MiB in all
    const { ws } = await open(wsUrl + `ws/slow-reader?count=${count}`);
    try {
      // One message at a time: the next goes when the last has left for the kernel.
      let written = 0;
      const sendNext = () => {
        if (written < count) ws.send(Buffer.alloc(size, written), () => { written++; sendNext(); });
      };
      sendNext();
      // The client stops getting its messages out well before the end: nobody reads them.
      const stuck = await stalled(() => written, 'the client to stop getting its messages out');
      assert.ok(stuck < count / 2, `${stuck} of ${count} messages of 1 MiB left the client for an app that reads nothing`);
      // The same worker answers HTTP meanwhile.
      assert.equal((await request(server.url + 'go')).status, 200);
      const reply = JSON.parse((await nextMessage(ws)).data.toString()) as { count: number; total: number };
      assert.deepEqual(reply, { count, total: count * size });
    } finally {
      ws.terminate();
    }
  });

  test('a rolling reload ends an open socket with 1001 within the deadline; new sockets reach the new worker', async () => {
    const { ws } = await open(wsUrl + 'ws/echo');
    ws.send('worker');
    const oldWorker = (await nextMessage(ws)).data.toString();
    const goingAway = closed(ws);
    const env = { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir };
    // The open socket is one of the worker's connections: busy, one in flight (the Workers view's figures).
    const status = await runCli(['status', '--dir', dir], env);
    assert.match(status.out, new RegExp(`^${oldWorker}\\s+web\\s+\\d+\\s+busy\\s+\\d+\\s+1\\s`, 'm'), status.out);
    const reload = await runCli(['reload', '--dir', dir], env);
    assert.equal(reload.code, 0, reload.out);
    assert.equal((await goingAway).code, 1001);
    await server.waitFor(/reload complete/);
    // The old worker ended by itself after the close: it was not killed at the deadline.
    await server.waitFor(new RegExp(`"GET /ws/echo HTTP/1.1" 101 \\d+ .* w=web:${oldWorker}`));
    assert.doesNotMatch(server.output(), /did not finish within .* killing it/);
    const fresh = await open(wsUrl + 'ws/echo');
    try {
      fresh.ws.send('worker');
      const newWorker = (await nextMessage(fresh.ws)).data.toString();
      assert.notEqual(newWorker, oldWorker);
      fresh.ws.send('still here');
      assert.equal((await nextMessage(fresh.ws)).data.toString(), 'echo:still here');
    } finally {
      fresh.ws.close();
    }
  });
});

describe('WebSockets to a WSGI pool', { skip: python ? false : 'no python3', timeout: 60_000 }, () => {
  let server: ServeProcess;
  let dir: string;
  before(async () => {
    dir = tempDir();
    writeFileSync(path.join(dir, 'app.py'), 'def app(environ, start_response):\n    start_response("200 OK", [("Content-Type", "text/plain")])\n    return [b"wsgi"]\n');
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', interface: 'wsgi', workers: 1 } }, routes: [{ path: '/', pool: 'web' }] }));
    server = await serve(dir, ['--python', python!]);
    await server.waitFor(/worker \d+ ready/);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answer 501 with the reason: WSGI has no WebSocket, use an ASGI app', async () => {
    const { status, body } = await refused(server.url.replace(/^http/, 'ws') + 'socket');
    assert.equal(status, 501);
    assert.match(body, /WSGI app \(app:app\)/);
    assert.match(body, /WSGI has no WebSocket/);
    assert.match(body, /ASGI app/);
    assert.match(body, /WEBSOCKET_UNSUPPORTED/);
    // HTTP still works, and the refusal has its access line.
    assert.equal((await request(server.url)).text, 'wsgi');
    await server.waitFor(/"GET \/socket HTTP\/1\.1" 501 \d+/);
  });
});
