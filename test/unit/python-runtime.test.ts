// The Python runtime's own unit tests (test/python/, stdlib unittest), run once per way of
// reading the worker channels: select() (POSIX's default) and reader threads (Windows'
// default, forced here with SERVESTACK_WORKER_IO=thread).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { findPython } from '../integration/harness';

const ROOT = path.resolve(__dirname, '..', '..');
const python = findPython([]);

for (const io of ['', 'thread']) {
  const label = io ? `SERVESTACK_WORKER_IO=${io}` : 'the default channel reading';
  test(`the runtime's Python unit tests pass with ${label}`, { skip: python ? false : 'no python3 found' }, () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
    delete env.SERVESTACK_WORKER_IO;
    if (io) env.SERVESTACK_WORKER_IO = io;
    const run = spawnSync(python!, ['-m', 'unittest', 'discover', '-s', path.join(ROOT, 'test', 'python'), '-p', 'test_*.py'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120000 });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, output);
    // A worker's channel closing ends its process with status 0 (os._exit): demand unittest's own verdict too.
    assert.match(output, /Ran [1-9]\d* tests? in [\d.]+s\s+OK/, output);
    if (io) assert.match(output, /reads its channels in reader threads \(SERVESTACK_WORKER_IO=thread\)/, output);
  });
}
