// How the server's Node is launched (server/nodeLaunch.json): the CLI's first line and the
// extension give the front a malloc setting; the workers must get the user's environment.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI, findPython, request, serve, tempDir, type ServeProcess } from './harness';

const python = findPython();
const onLinux = process.platform === 'linux';

// Each answer says what the worker's environment holds of the launch settings.
const APP = `import json, os
def app(environ, start_response):
    seen = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "SERVESTACK_WAS_"))}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]
`;

function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

describe('launch: the front gets its malloc setting, the workers the user\'s environment', { skip: !python ? 'no python3 found' : !onLinux ? 'the #! line and /proc are Linux facts' : false }, () => {
  const dirs: string[] = [];
  let server: ServeProcess | undefined;
  after(async () => {
    await server?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function serveApp(env: NodeJS.ProcessEnv): Promise<ServeProcess> {
    const dir = tempDir();
    dirs.push(dir);
    writeFileSync(path.join(dir, 'app.py'), APP);
    writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({ pools: { web: { app: 'app:app', workers: 1 } }, routes: [{ path: '/', pool: 'web' }] }));
    const started = await serve(dir, ['--python', python!], env, { byFirstLine: true });
    await started.waitFor(/worker \d+ ready/);
    return started;
  }

  test('the first line starts node with the launch flags and MALLOC_ARENA_MAX=2', async () => {
    const firstLine = readFileSync(CLI, 'utf8').split('\n', 1)[0];
    const launch = JSON.parse(readFileSync(path.join(path.dirname(CLI), '..', 'server', 'nodeLaunch.json'), 'utf8')) as { nodeFlags: string[] };
    server = await serveApp({ MALLOC_ARENA_MAX: undefined });
    const cmdline = readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(launch.nodeFlags.every((flag) => cmdline.includes(flag)), `${cmdline.join(' ')} (first line: ${firstLine})`);
    assert.equal(environOf(server.child.pid!).MALLOC_ARENA_MAX, '2');
    const reply = await request(server.url);
    assert.deepEqual(JSON.parse(reply.text), {}, 'the worker sees neither the setting nor its note');
    await server.stop();
    server = undefined;
  });

  test("a user's own MALLOC_ARENA_MAX reaches the workers as the user set it", async () => {
    server = await serveApp({ MALLOC_ARENA_MAX: '4' });
    assert.equal(environOf(server.child.pid!).MALLOC_ARENA_MAX, '2', 'the front runs with the launch setting');
    const reply = await request(server.url);
    assert.deepEqual(JSON.parse(reply.text), { MALLOC_ARENA_MAX: '4' });
    await server.stop();
    server = undefined;
  });
});
