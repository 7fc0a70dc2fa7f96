// serverLaunchEnv / restoreUserEnv: what the extension starts the server with, and what the
// server gives back to its workers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restoreUserEnv, serverLaunchEnv } from '../../server/launch';

test('the launch sets MALLOC_ARENA_MAX and notes that it was not set; restoring removes both', () => {
  const env = serverLaunchEnv({ PATH: '/bin' });
  assert.equal(env.MALLOC_ARENA_MAX, '2');
  assert.equal(env.SERVESTACK_WAS_MALLOC_ARENA_MAX, '');
  restoreUserEnv(env);
  assert.deepEqual(env, { PATH: '/bin' });
});

test("a user's value is noted and put back", () => {
  const env = serverLaunchEnv({ MALLOC_ARENA_MAX: '8' });
  assert.equal(env.MALLOC_ARENA_MAX, '2');
  restoreUserEnv(env);
  assert.deepEqual(env, { MALLOC_ARENA_MAX: '8' });
});

test('"${NAME}" left unexpanded (npm\'s Windows shim of the first line) counts as not set', () => {
  const env: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: '2', SERVESTACK_WAS_MALLOC_ARENA_MAX: '${MALLOC_ARENA_MAX}' };
  restoreUserEnv(env);
  assert.deepEqual(env, {});
});

test('without the note, nothing is touched (the server started some other way)', () => {
  const env: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: '3' };
  restoreUserEnv(env);
  assert.deepEqual(env, { MALLOC_ARENA_MAX: '3' });
});
