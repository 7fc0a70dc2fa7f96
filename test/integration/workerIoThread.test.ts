// The Windows way of reading the worker channels (a reader thread, no select() and no
// add_reader on a pipe), run here on POSIX by SERVESTACK_WORKER_IO=thread: the variable
// reaches sync and ASGI workers through the pool's environment, and the suites of real
// apps (Flask, FastAPI, uploads, streaming, buffering, take-back) pass on that path too.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, findPython, request, serve, tempCopy } from './harness';

const FORCED = { SERVESTACK_WORKER_IO: 'thread' };
const flaskPython = findPython(['flask']);
const fastapiPython = findPython(['fastapi']);

describe('SERVESTACK_WORKER_IO=thread', () => {
  test('a sync worker reads its channels in reader threads and serves Flask', { skip: flaskPython ? false : 'no interpreter with flask (apt-get install python3-flask)' }, async () => {
    const dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    const server = await serve(dir, ['--python', flaskPython!, '--workers', '1'], FORCED);
    try {
      await server.waitFor(/worker \d+ ready/);
      await server.waitFor('reads its channels in reader threads (SERVESTACK_WORKER_IO=thread)');
      const posted = await request(server.url + 'echo', { method: 'POST', body: 'name=Ada', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      assert.equal(posted.status, 200);
      assert.match(posted.text, /Ada/);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an ASGI worker feeds its loop from reader threads and serves FastAPI', { skip: fastapiPython ? false : 'no interpreter with fastapi (apt-get install python3-fastapi)' }, async () => {
    const dir = tempCopy(path.join(ROOT, 'test', 'fixtures', 'apps', 'fastapi-app'));
    const server = await serve(dir, ['--python', fastapiPython!, '--workers', '1'], FORCED);
    try {
      await server.waitFor(/worker \d+ ready/);
      await server.waitFor(/ASGI worker pid \d+ runs on .*; channels read by threads/);
      const reply = await request(server.url + 'api/info');
      assert.equal(JSON.parse(reply.text).lifespan_started, true);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the real-app, serve, buffering and pool suites pass on the thread path', () => {
    const files = ['apps', 'serve', 'buffering', 'pool'].map((name) => path.join('test', 'integration', `${name}.test.ts`));
    const env: NodeJS.ProcessEnv = { ...process.env, ...FORCED };
    // Otherwise the nested runner would report to this one as its child instead of running the files.
    delete env.NODE_TEST_CONTEXT;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 15 * 60 * 1000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, output);
    assert.match(output, /ℹ fail 0/, output);
    assert.doesNotMatch(output, /ℹ pass 0\b/, output);
  });
});
