// The per-folder state file: private permissions, one file per folder, stale detection,
// and removal only by its owner.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  readServerState,
  removeServerState,
  removeStaleServerState,
  stateDir,
  stateFilePath,
  writeServerState,
  type ServerState,
} from '../../server/control/stateFile';

const posix = process.platform !== 'win32';

describe('control state file', () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let folder: string;
  const state = (over: Partial<ServerState> = {}): ServerState => ({
    pid: process.pid,
    dir: folder,
    url: 'http://127.0.0.1:8080',
    controlPort: 45678,
    token: 'c'.repeat(64),
    startedAt: Date.now(),
    version: '0.1.0',
    ...over,
  });

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-state-'));
    env = { XDG_RUNTIME_DIR: path.join(tmp, 'runtime'), LOCALAPPDATA: path.join(tmp, 'local') };
    folder = path.join(tmp, 'snow ☃ app');
    fs.mkdirSync(folder);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('lives under $XDG_RUNTIME_DIR/servestack, else ~/.servestack/run', { skip: !posix }, () => {
    assert.equal(stateDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/servestack');
    assert.equal(stateDir({}), path.join(os.homedir(), '.servestack', 'run'));
  });

  it('writes the file 0600 in a 0700 directory, even under a permissive umask', { skip: !posix }, () => {
    const old = process.umask(0o000);
    try {
      const file = writeServerState(folder, state(), env);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    } finally {
      process.umask(old);
    }
  });

  it('tightens an existing state directory that others could read', { skip: !posix }, () => {
    fs.chmodSync(stateDir(env), 0o755);
    writeServerState(folder, state(), env);
    assert.equal(fs.statSync(stateDir(env)).mode & 0o777, 0o700);
  });

  it('names the file by a hash of the folder: one file per folder, whatever the spelling of the path', () => {
    const a = stateFilePath(folder, env);
    assert.equal(stateFilePath(path.join(folder, '..', path.basename(folder)), env), a);
    assert.equal(stateFilePath(`${folder}${path.sep}`, env), a);
    assert.notEqual(stateFilePath(tmp, env), a);
    assert.match(path.basename(a), /^[0-9a-f]{32}\.json$/);
  });

  it('reads back what was written, not stale while the pid runs', () => {
    writeServerState(folder, state({ controlPort: 1111 }), env);
    const s = readServerState(folder, env);
    assert.ok(s);
    assert.equal(s.controlPort, 1111);
    assert.equal(s.pid, process.pid);
    assert.equal(s.stale, false);
    assert.equal(s.file, stateFilePath(folder, env));
  });

  it('returns undefined when no server wrote a file for the folder', () => {
    assert.equal(readServerState(path.join(tmp, 'elsewhere'), env), undefined);
  });

  it('marks the file stale when its pid has exited', async () => {
    const child = spawn(process.execPath, ['-e', '0'], { windowsHide: true });
    const pid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    writeServerState(folder, state({ pid }), env);
    const s = readServerState(folder, env);
    assert.equal(s?.stale, true);
    assert.equal(removeStaleServerState(s!), true);
    assert.equal(readServerState(folder, env), undefined);
  });

  it('marks an unreadable file stale rather than failing', () => {
    fs.writeFileSync(stateFilePath(folder, env), '{"pid": 1, "torn');
    const s = readServerState(folder, env);
    assert.equal(s?.stale, true);
    assert.equal(removeStaleServerState(s!), true);
  });

  it('does not remove a stale file that a new server has replaced in the meantime', async () => {
    const child = spawn(process.execPath, ['-e', '0'], { windowsHide: true });
    await new Promise((r) => child.once('exit', r));
    writeServerState(folder, state({ pid: child.pid! }), env);
    const s = readServerState(folder, env)!;
    writeServerState(folder, state(), env); // a new server, alive
    assert.equal(removeStaleServerState(s), false);
    assert.equal(readServerState(folder, env)?.pid, process.pid);
  });

  it('removeServerState removes only the file of the pid given', () => {
    writeServerState(folder, state(), env);
    assert.equal(removeServerState(folder, process.pid + 1, env), false);
    assert.ok(readServerState(folder, env));
    assert.equal(removeServerState(folder, process.pid, env), true);
    assert.equal(readServerState(folder, env), undefined);
    assert.equal(removeServerState(folder, process.pid, env), false);
  });

  it('leaves no temporary files behind', () => {
    writeServerState(folder, state(), env);
    writeServerState(folder, state(), env);
    assert.deepEqual(
      fs.readdirSync(stateDir(env)).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });
});
