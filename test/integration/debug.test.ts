// Debugging the live pool with the real debugpy (Debian python3-debugpy) and a real Flask
// app: a Debug Adapter Protocol client attaches to a debugged worker, a request through
// the proxy stops at a breakpoint, the paused worker outlives the pool's timeout while the
// other worker serves, and Stop Debugging rolls back with no failed request. Dump Stack and
// the "stuck in" location come through the control channel.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { connectControl, type ControlClient } from '../../server/control/client';
import { readServerState } from '../../server/control/stateFile';
import type { WorkerInfo } from '../../server/protocol';
import { DapClient } from './dap';
import { eventually, findPython, pythonProcessesIn, request, serve, tempDir, type ServeProcess } from './harness';

const python = findPython(['flask', 'debugpy']);
const skip = python ? false : 'needs an interpreter with flask and debugpy (apt install python3-flask python3-debugpy)';
if (skip) console.log(`# skipping the debug tests: ${skip}`);

const APP = [
  'import os, time', // 1
  'from flask import Flask', // 2
  'app = Flask(__name__)', // 3
  '', // 4
  '@app.route("/hello/<name>")', // 5
  'def hello(name):', // 6
  '    greeting = "hello " + name', // 7
  '    return "%s from %d\\n" % (greeting, os.getpid())', // 8  ← the breakpoint
  '', // 9
  '@app.route("/other")', // 10
  'def other():', // 11
  '    return "other from %d\\n" % os.getpid()', // 12
  '', // 13
  '@app.route("/slow")', // 14
  'def slow_query():', // 15
  '    time.sleep(20)', // 16  ← where a hung request is stuck
  '    return "slow\\n"', // 17
  '',
].join('\n');
const BREAKPOINT_LINE = 8;
const STUCK_LINE = 16;

async function withServer(fn: (server: ServeProcess, client: ControlClient, dir: string) => Promise<void>, args: string[] = []): Promise<void> {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'app.py'), APP);
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', workers: 2, timeout: '2s' } }, routes: [{ path: '/', pool: 'web' }] }));
  const server = await serve(dir, ['--python', python!, ...args]);
  let client: ControlClient | undefined;
  try {
    await server.waitFor(/worker \d+ ready[\s\S]*worker \d+ ready/);
    const state = readServerState(dir, { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir });
    assert.ok(state, 'the server wrote its state file');
    client = await connectControl({ port: state.controlPort, token: state.token });
    await fn(server, client, dir);
  } finally {
    await client?.close();
    await server.stop();
    await eventually(() => pythonProcessesIn(dir).length === 0, 10000, 'no worker left behind');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function workers(client: ControlClient): Promise<WorkerInfo[]> {
  return (await client.request({ type: 'status' })).workers.filter((w) => w.state !== 'exited');
}

/** initialize, attach, setBreakpoints, configurationDone: what VS Code does for a debugpy attach. */
async function attach(port: number, file: string, line: number): Promise<DapClient> {
  const dap = await DapClient.connect(port);
  const init = await dap.request('initialize', { clientID: 'servestack-test', adapterID: 'debugpy', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  assert.ok(init.body, 'initialize answers with the capabilities');
  // debugpy answers attach only after configurationDone.
  const attached = dap.request('attach', { justMyCode: true });
  await dap.waitForEvent('initialized');
  const set = await dap.request('setBreakpoints', { source: { path: file }, breakpoints: [{ line }] });
  assert.equal(set.body.breakpoints.length, 1);
  await dap.request('configurationDone');
  await attached;
  return dap;
}

describe('debugging the live pool', { skip }, () => {
  test('a breakpoint in a Flask view is hit through the proxy; paused outlives the timeout; Stop Debugging drops nothing', async () => {
    await withServer(async (server, client, dir) => {
      const result = await client.request({ type: 'debugWorkers', pool: 'web', pinRoute: '/hello' }, { timeoutMs: 60000 });
      assert.equal(result.workers.length, 1);
      const debugged = result.workers[0];
      assert.ok(debugged.port > 0, 'the worker reports the port debugpy listens on');
      await server.waitFor(new RegExp(`debugpy listening on 127\\.0\\.0\\.1:${debugged.port}`));
      await server.waitFor('using the debugpy of /usr/bin/python3'); // the log says which debugpy is used
      // The worker it replaced drains and exits by itself: then the pool has two again.
      const listed = await eventually(async () => {
        const list = await workers(client);
        return list.length === 2 ? list : undefined;
      }, 15000, 'two workers in the pool');
      const debuggedInfo = listed.find((w) => w.id === debugged.id);
      assert.equal(debuggedInfo?.debug?.port, debugged.port);
      assert.deepEqual(debuggedInfo?.debug?.pinned, { route: '/hello' });
      const other = listed.find((w) => w.id !== debugged.id)!;
      assert.equal(other.debug, undefined);

      const dap = await attach(debugged.port, path.join(dir, 'app.py'), BREAKPOINT_LINE);
      try {
        const from = dap.events.length;
        const answer = request(`${server.url}hello/world`);
        const stopped = await dap.waitForEvent('stopped', 20000, from);
        assert.equal(stopped.body.reason, 'breakpoint');
        const threadId = stopped.body.threadId as number;
        const trace = await dap.request('stackTrace', { threadId, startFrame: 0, levels: 20 });
        const top = trace.body.stackFrames[0];
        const seen = `stopped ${JSON.stringify(stopped.body)} at ${JSON.stringify(trace.body.stackFrames.map((f: { name: string; line: number; source?: { path?: string } }) => [f.name, f.line, f.source?.path]))}`;
        assert.equal(top.line, BREAKPOINT_LINE, seen);
        assert.equal(path.basename(top.source.path), 'app.py');
        assert.equal(top.name, 'hello');
        const scopes = await dap.request('scopes', { frameId: top.id });
        const locals = scopes.body.scopes.find((s: { name: string }) => /local/i.test(s.name));
        assert.ok(locals, `a Locals scope among ${scopes.body.scopes.map((s: { name: string }) => s.name)}`);
        const variables = await dap.request('variables', { variablesReference: locals.variablesReference });
        const greeting = variables.body.variables.find((v: { name: string }) => v.name === 'greeting');
        assert.equal(greeting?.value, "'hello world'");

        // The arbiter sees the pause: the Workers view's "paused in debugger".
        const paused = await eventually(async () => (await workers(client)).find((w) => w.id === debugged.id && w.debug?.paused), 10000, 'the worker reported as paused');
        assert.equal(paused.debug?.where?.line, BREAKPOINT_LINE);
        assert.equal(path.basename(paused.debug?.where?.file ?? ''), 'app.py');

        // Stopped for longer than the pool's 2 s timeout: the worker must not be killed…
        await server.waitFor(/paused in debugger/);
        const pausedAt = Date.now();
        // A second pinned request waits for the paused worker, without holding up the rest…
        const queuedPinned = request(`${server.url}hello/again`);
        // …and meanwhile the other worker serves (unpinned routes), one request after another.
        const served = new Set<string>();
        while (Date.now() - pausedAt < 3500) {
          const r = await request(`${server.url}other`);
          assert.equal(r.status, 200, r.text);
          served.add(r.text.trim().split(' ').pop()!);
        }
        assert.deepEqual([...served], [String(other.pid)], 'every request went to the worker that is not paused');
        const still = (await workers(client)).find((w) => w.id === debugged.id);
        assert.equal(still?.pid, debuggedInfo?.pid, 'the paused worker is the same process');
        assert.doesNotMatch(server.output(), /past the pool's timeout|sent no heartbeat/);

        const beforeContinue = dap.events.length;
        await dap.request('continue', { threadId });
        const reply = await answer;
        assert.equal(reply.status, 200);
        assert.equal(reply.text, `hello world from ${debuggedInfo?.pid}\n`);
        // The pinned request that waited reaches the same breakpoint, on the same worker.
        const again = await dap.waitForEvent('stopped', 20000, beforeContinue);
        await dap.request('continue', { threadId: again.body.threadId });
        const second = await queuedPinned;
        assert.equal(second.status, 200);
        assert.equal(second.text, `hello again from ${debuggedInfo?.pid}\n`);
        await eventually(async () => (await workers(client)).some((w) => w.id === debugged.id && w.debug && !w.debug.paused), 10000, 'the worker reported as running again');
        await dap.request('disconnect', { terminateDebuggee: false }).catch(() => undefined);
      } finally {
        dap.close();
      }

      // Stop Debugging under load: rolling, not one failed request.
      const statuses: number[] = [];
      let loading = true;
      const load = (async () => {
        while (loading || statuses.length < 20) {
          const paths = ['hello/load', 'other'];
          const r = await request(`${server.url}${paths[statuses.length % 2]}`).catch(() => ({ status: 0 }));
          statuses.push(r.status);
        }
      })();
      await client.request({ type: 'stopDebugging', pool: 'web' }, { timeoutMs: 60000 });
      loading = false;
      await load;
      assert.deepEqual([...new Set(statuses)], [200], `statuses while debugging stopped: ${statuses.join(',')}`);
      // The debugged worker drains, then exits by itself.
      const after = await eventually(async () => {
        const list = await workers(client);
        return list.some((w) => w.id === debugged.id) ? undefined : list;
      }, 15000, 'the debugged worker gone');
      assert.deepEqual(after.map((w) => w.debug), [undefined, undefined], 'two normal workers');
      const r = await request(`${server.url}hello/again`);
      assert.equal(r.status, 200);
    });
  });

  test('Dump Stack of a busy worker, and "stuck in app.py:N" kept after a timeout kill', async () => {
    await withServer(async (server, client) => {
      const slow = request(`${server.url}slow`);
      const busy = await eventually(async () => (await workers(client)).find((w) => w.inFlight === 1), 10000, 'a busy worker');
      const report = await eventually(async () => {
        const r = await client.request({ type: 'dumpStack', worker: busy.id });
        return r.stuck?.function === 'slow_query' ? r : undefined;
      }, 10000, 'the stack of the busy worker in slow_query');
      assert.equal(path.basename(report.stuck!.file), 'app.py');
      assert.equal(report.stuck!.line, STUCK_LINE);
      assert.equal(report.pid, busy.pid);
      assert.ok(report.threads.some((t) => t.frames.some((f) => f.function === 'slow_query')), 'the serving thread is in the list');

      const reply = await slow;
      assert.equal(reply.status, 504, 'the pool timeout answered');
      const kept = await eventually(async () => (await workers(client)).filter((w) => w.lastTimeout), 10000, 'a worker entry with the last timeout');
      for (const w of kept) {
        assert.equal(w.lastTimeout!.function, 'slow_query');
        assert.equal(w.lastTimeout!.line, STUCK_LINE);
        assert.equal(path.basename(w.lastTimeout!.file), 'app.py');
      }
      await server.waitFor(/was stuck in .*app\.py:16 in slow_query/);
      await server.waitFor(/past the pool's timeout[\s\S]*stack of every thread/); // the text dump is still in the log
    });
  });

  test('serve --debug starts one worker under debugpy, prints its port, and waits for no client', async () => {
    await withServer(async (server, client) => {
      const line = await server.waitFor(/debugpy listening on 127\.0\.0\.1:\d+/, 30000);
      const port = Number(/:(\d+)/.exec(line)![1]);
      // Nothing waits for a client: requests are served before anyone attaches.
      for (let i = 0; i < 6; i++) assert.equal((await request(`${server.url}other`)).status, 200);
      const debugged = (await workers(client)).filter((w) => w.debug);
      assert.equal(debugged.length, 1);
      assert.equal(debugged[0].debug?.port, port);
      const dap = await DapClient.connect(port);
      try {
        const init = await dap.request('initialize', { clientID: 'servestack-test', adapterID: 'debugpy' });
        assert.ok(init.success, 'debugpy answers on the printed port');
      } finally {
        dap.close();
      }
    }, ['--debug']);
  });
});
