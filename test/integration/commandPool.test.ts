// Command pools: any program that serves HTTP on $PORT, behind the proxy, with its
// WebSockets, and gone when the server goes.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { eventually, findPython, pidAlive, request, serve, tempDir } from './harness';

const python = findPython();

/** Processes whose working directory is inside dir: the no-orphans check for programs we did not name. */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

describe('command pools', () => {
  test('a program serving on $PORT is reached through the proxy and stops with the server', { skip: python ? false : 'no python3 found' }, async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'hello.txt'), 'from http.server');
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { files: { command: `${python} -m http.server $PORT --bind 127.0.0.1` } },
      routes: [{ path: '/', pool: 'files' }],
    }));
    const server = await serve(dir);
    try {
      const reply = await eventually(async () => {
        const r = await request(server.url + 'hello.txt', { headers: { 'X-Forwarded-For': '6.6.6.6' } });
        return r.status === 200 ? r : undefined;
      }, 20000, 'the command pool to answer');
      assert.equal(reply.text, 'from http.server');
      await server.waitFor(/pool 'files': ready on port \d+/);
      await server.waitFor(/"GET \/hello\.txt HTTP\/1\.1" 200 16 .* w=files:cmd/);
    } finally {
      await server.stop();
      assert.deepEqual(processesIn(dir), [], 'the program outlived the server');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('WebSockets reach the program, and kill -9 of the server ends its whole process group', async () => {
    const dir = tempDir();
    const ws = JSON.stringify(require.resolve('ws'));
    writeFileSync(path.join(dir, 'echo.js'), [
      `const { WebSocketServer } = require(${ws});`,
      "const http = require('http');",
      "const server = http.createServer((req, res) => res.end('http ok ' + req.url));",
      "new WebSocketServer({ server }).on('connection', (s, req) => s.on('message', (m) => s.send('echo:' + m + ' via ' + req.url)));",
      "server.listen(Number(process.env.PORT), '127.0.0.1');",
    ].join('\n'));
    // Through a shell with a child of its own, as `npm run dev` would.
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
      pools: { ui: { command: `sh -c '${process.execPath} echo.js'` } },
      routes: [{ path: '/', pool: 'ui' }],
    }));
    const server = await serve(dir);
    try {
      await server.waitFor(/pool 'ui': ready on port \d+/, 20000);
      assert.equal((await request(server.url + 'x')).text, 'http ok /x');
      const socket = new WebSocket(server.url.replace('http', 'ws') + 'live');
      const reply = await new Promise<string>((resolve, reject) => {
        socket.on('open', () => socket.send('hi'));
        socket.on('message', (m) => resolve(m.toString()));
        socket.on('error', reject);
      });
      socket.close();
      assert.equal(reply, 'echo:hi via /live');
      const program = processesIn(dir);
      assert.ok(program.length >= 1);
      await server.stop('SIGKILL');
      await eventually(() => program.every((pid) => !pidAlive(pid)), 8000, 'the program to end with its server');
    } finally {
      for (const pid of processesIn(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
