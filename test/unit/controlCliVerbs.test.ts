// The CLI's control verbs in-process, against a control server over an in-memory target
// found through a real state file (in a private temporary runtime dir), and against none.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { formatDuration, formatStatus, runControlVerb, type ControlVerb } from '../../server/control/cliVerbs';
import { startControlServer, type ControlServer } from '../../server/control/server';
import { readServerState, stateFilePath, writeServerState } from '../../server/control/stateFile';
import { createFakeTarget, type FakeTarget } from './controlFakeTarget';

async function waitFor(fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('control CLI verbs', () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let folder: string;
  let target: FakeTarget;
  let server: ControlServer;
  let out: string[];
  let err: string[];

  const run = (verb: ControlVerb, args: string[] = [], extra: { signal?: AbortSignal; dir?: string } = {}): Promise<number> =>
    runControlVerb(verb, args, { dir: extra.dir ?? folder, env, out: (s) => out.push(s), err: (s) => err.push(s), signal: extra.signal, stopTimeoutMs: 5000 });

  const register = (pid = process.pid, port = server.port, token = server.token): void => {
    writeServerState(folder, { pid, dir: folder, url: 'http://127.0.0.1:8080', controlPort: port, token, startedAt: Date.now(), version: '0.0.0-test' }, env);
  };

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-verbs-'));
    env = { XDG_RUNTIME_DIR: path.join(tmp, 'runtime'), LOCALAPPDATA: path.join(tmp, 'local') };
    folder = path.join(tmp, 'with space');
    fs.mkdirSync(folder);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  beforeEach(async () => {
    out = [];
    err = [];
    target = createFakeTarget(folder);
    server = await startControlServer(target);
  });
  afterEach(async () => {
    await server.close();
    fs.rmSync(stateFilePath(folder, env), { force: true });
  });

  it('says no server runs, with the command to start one, and exits 1', async () => {
    assert.equal(await run('status'), 1);
    assert.equal(err.join('\n'), `no ServeStack server runs for ${folder}; start one with \`servestack serve "${folder}"\``);
  });

  it('removes a stale state file, says so, and exits 1', async () => {
    const child = spawn(process.execPath, ['-e', '0'], { windowsHide: true });
    await new Promise((r) => child.once('exit', r));
    register(child.pid!);
    assert.equal(await run('reload'), 1);
    assert.match(err.join('\n'), new RegExp(`removed a stale state file \\(its server \\(pid ${child.pid}\\) no longer runs\\)`));
    assert.equal(readServerState(folder, env), undefined);
  });

  it('says when the server does not answer on its control port', async () => {
    register(process.pid, 1);
    assert.equal(await run('status'), 1);
    assert.match(err.join('\n'), /does not answer on its control port/);
  });

  it('says when the token in the state file is refused', async () => {
    register(process.pid, server.port, '0'.repeat(64));
    assert.equal(await run('status'), 1);
    assert.match(err.join('\n'), /refused the connection \(401\)/);
  });

  it('status prints the server, a table of pools and a table of workers', async () => {
    register();
    assert.equal(await run('status'), 0);
    const text = out.join('\n');
    assert.match(text, /^ServeStack 0\.0\.0-test serving .* at http:\/\/127\.0\.0\.1:8080 \(pid \d+, up 1m00s\)/);
    assert.match(text, /POOL +KIND +WORKERS +STATE +APP\nweb +python +2\/2 +running +app:app/);
    assert.match(text, /ID +POOL +PID +STATE +REQUESTS +IN-FLIGHT +MEMORY +UPTIME\n1 +web +\d+ +idle +0 +0 +25\.0 MiB +5s/);
    assert.deepEqual(err, []);
  });

  it('scale N scales the only pool; scale POOL N names it', async () => {
    register();
    assert.equal(await run('scale', ['3']), 0);
    assert.deepEqual(target.calls.at(-1), { name: 'scale', args: [undefined, 3] });
    assert.equal(out.at(-1), 'web: scaling to 3 workers');
    assert.equal(await run('scale', ['web', '1']), 0);
    assert.deepEqual(target.calls.at(-1), { name: 'scale', args: ['web', 1] });
  });

  it('scale of an unknown pool prints the server\'s error and exits 1', async () => {
    register();
    assert.equal(await run('scale', ['api', '2']), 1);
    assert.match(err.join('\n'), /error: no pool "api".* — see servestack status \[CONTROL_UNKNOWN_POOL\]/);
  });

  it('usage errors exit 2 before looking for a server', async () => {
    for (const [verb, args] of [['scale', []], ['scale', ['many']], ['scale', ['a', 'b', '3']], ['status', ['extra']], ['logs', ['-x']], ['reload', ['--force']]] as [ControlVerb, string[]][]) {
      err = [];
      assert.equal(await run(verb, args), 2, `${verb} ${args.join(' ')}`);
      assert.match(err.join('\n'), /usage: servestack/);
    }
  });

  it('reload reloads every pool, or the one named', async () => {
    register();
    assert.equal(await run('reload'), 0);
    assert.equal(out.at(-1), 'reloaded every pool');
    assert.equal(await run('reload', ['web']), 0);
    assert.deepEqual(
      target.calls.map((c) => [c.name, ...c.args]),
      [
        ['reload', undefined],
        ['reload', 'web'],
      ],
    );
  });

  it('logs prints the recent lines, -n limits them', async () => {
    register();
    for (let i = 0; i < 5; i++) target.log(`line ${i}`, { pool: 'web', workerId: 2, source: 'worker' });
    assert.equal(await run('logs', ['-n', '2']), 0);
    assert.equal(out.length, 2);
    assert.match(out[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  worker web#2: line 3$/);
  });

  it('logs -f follows new lines until stopped, without repeating any', async () => {
    register();
    target.log('old');
    const ac = new AbortController();
    const done = run('logs', ['-f'], { signal: ac.signal });
    await waitFor(() => out.some((l) => l.endsWith('old')));
    target.log('new');
    await waitFor(() => out.some((l) => l.endsWith('new')));
    ac.abort();
    assert.equal(await done, 0);
    assert.deepEqual(
      out.map((l) => l.split(': ').at(-1)),
      ['old', 'new'],
    );
  });

  it('logs -f ends by itself when the server stops', async () => {
    register();
    target.log('before');
    const done = run('logs', ['-f']);
    // The recent lines are printed just before following starts (in the same turn); a
    // connected client alone may not have asked for them yet.
    await waitFor(() => out.some((l) => l.endsWith('before')));
    target.emit({ type: 'stopping' });
    await server.close();
    assert.equal(await done, 0);
    assert.equal(err.join('\n'), 'the server stopped');
  });

  it('logs -f ends the same way when the server stops while it connects', async () => {
    register();
    target.log('last line');
    // The server stops right after sending the snapshot, before the recent lines are asked
    // for or answered: the window the test above once hit on a busy machine.
    const snapshot = target.snapshot.bind(target);
    target.snapshot = () => {
      setImmediate(() => {
        target.emit({ type: 'stopping' });
        void server.close();
      });
      return snapshot();
    };
    assert.equal(await run('logs', ['-f']), 0);
    assert.equal(err.join('\n'), 'the server stopped');
  });

  it('logs without -f reports a server that stops before answering as an error', async () => {
    register();
    const snapshot = target.snapshot.bind(target);
    target.snapshot = () => {
      setImmediate(() => void server.close());
      return snapshot();
    };
    assert.equal(await run('logs'), 1);
    assert.match(err.join('\n'), /\[CONTROL_CONNECTION_FAILED\]/);
  });

  it('stop asks the server to stop and waits until its process has exited', async () => {
    const child: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { windowsHide: true, stdio: 'ignore' });
    try {
      register(child.pid!);
      target.onStop = () => {
        setTimeout(() => child.kill(), 200); // exits a moment after the reply
      };
      assert.equal(await run('stop'), 0);
      assert.equal(child.exitCode !== null || child.signalCode !== null, true);
      assert.equal(out.at(-1), `stopped the ServeStack server for ${folder} (pid ${child.pid})`);
      assert.equal(readServerState(folder, env), undefined);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

describe('control CLI formatting', () => {
  it('formats durations the way a table reads them', () => {
    assert.deepEqual([0, 5_000, 65_000, 3_600_000 + 120_000, 90_000_000].map(formatDuration), ['0s', '5s', '1m05s', '1h02m', '1d01h']);
  });

  it('shows a pool\'s failure under the pools table', () => {
    const text = formatStatus({
      protocol: 1,
      server: { pid: 1, version: 'v', dir: '/d', url: 'http://x', startedAt: 0 },
      pools: [{ name: 'web', kind: 'python', app: 'app:app', wanted: 2, state: 'backoff', failure: 'app.py:3: NameError' }],
      workers: [],
      routes: [],
    }, 1000);
    assert.match(text, /web +python +0\/2 +backoff +app:app\n  web: app\.py:3: NameError/);
    assert.match(text, /no workers/);
  });
});
