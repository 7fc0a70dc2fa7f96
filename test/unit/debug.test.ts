// The debug commands' shapes (control channel and CLI) and the stack report's text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStackReport, parseVerbArgs } from '../../server/control/cliVerbs';
import { parseCommand } from '../../server/control/handlers';

test('debugWorkers takes a pool, a worker, a pin or a route pin, and refuses a route that is no path', () => {
  assert.deepEqual(parseCommand({ id: 1, type: 'debugWorkers', pool: 'web', pinRoute: '/api', port: 5678 }), {
    id: 1, type: 'debugWorkers', pool: 'web', worker: undefined, all: false, pin: false, pinRoute: '/api', port: 5678, debugpyPath: undefined,
  });
  assert.throws(() => parseCommand({ id: 2, type: 'debugWorkers', pinRoute: 'api' }), /"pinRoute" must be a route path starting with \//);
  assert.throws(() => parseCommand({ id: 3, type: 'debugWorkers', pin: 'yes' }), /"pin" must be true or false/);
  assert.throws(() => parseCommand({ id: 4, type: 'debugWorkers', port: 70000 }), /"port" must be an integer from 0 to 65535/);
  assert.deepEqual(parseCommand({ id: 5, type: 'dumpStack', worker: 3 }), { id: 5, type: 'dumpStack', worker: 3 });
  assert.throws(() => parseCommand({ id: 6, type: 'dumpStack' }), /"worker" must be an integer/);
  assert.deepEqual(parseCommand({ id: 7, type: 'stopDebugging' }), { id: 7, type: 'stopDebugging', pool: undefined });
});

test('the CLI verbs debug, stop-debugging and dump-stack parse their arguments', () => {
  assert.deepEqual(parseVerbArgs('debug', ['web', '--pin-route', '/api', '--debug-port', '5678']), { verb: 'debug', pool: 'web', all: false, pin: false, pinRoute: '/api', port: 5678 });
  assert.deepEqual(parseVerbArgs('debug', ['--worker', '4', '--pin']), { verb: 'debug', all: false, pin: true, worker: 4 });
  assert.throws(() => parseVerbArgs('debug', ['--pin-route', 'api']), /starting with \//);
  assert.throws(() => parseVerbArgs('debug', ['--bogus']), /unknown argument --bogus/);
  assert.deepEqual(parseVerbArgs('dump-stack', ['3']), { verb: 'dump-stack', worker: 3 });
  assert.throws(() => parseVerbArgs('dump-stack', []), /needs a worker id/);
  assert.deepEqual(parseVerbArgs('stop-debugging', ['web']), { verb: 'stop-debugging', pool: 'web' });
});

test('a stack report reads "in FILE:LINE in FUNCTION", then every thread innermost last', () => {
  const text = formatStackReport({
    pid: 42,
    stuck: { file: '/srv/app.py', line: 16, function: 'slow_query' },
    threads: [{ name: 'MainThread', frames: [{ file: '/srv/worker.py', line: 1, function: 'main' }, { file: '/srv/app.py', line: 16, function: 'slow_query' }] }],
  }, 3);
  assert.equal(text, 'worker 3 (pid 42): in /srv/app.py:16 in slow_query\n\nthread MainThread:\n  /srv/worker.py:1 in main\n  /srv/app.py:16 in slow_query');
});
