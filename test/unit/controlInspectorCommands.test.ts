// The inspector's control commands: their shape is checked, and a server without the
// inspector (not in development) says so instead of failing obscurely.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handleCommandText, parseCommand } from '../../server/control/handlers';
import { createFakeTarget } from './controlFakeTarget';

describe('inspector commands', () => {
  it('parses requests, inspectRequest and replayRequest with their options', () => {
    assert.deepEqual(parseCommand({ id: 1, type: 'requests', limit: 50 }), { id: 1, type: 'requests', limit: 50 });
    assert.deepEqual(parseCommand({ id: 2, type: 'inspectRequest', request: 7, reveal: true }), { id: 2, type: 'inspectRequest', request: 7, reveal: true });
    assert.deepEqual(parseCommand({ id: 3, type: 'replayRequest', request: 7, edit: { method: 'PUT', headers: [['X-A', 'b']], body: 'x' } }),
      { id: 3, type: 'replayRequest', request: 7, edit: { method: 'PUT', headers: [['X-A', 'b']], body: 'x' } });
  });

  it('refuses a header edit that would smuggle a line break or a bad name', () => {
    assert.throws(() => parseCommand({ id: 4, type: 'replayRequest', request: 7, edit: { headers: [['X-A', 'b\r\nX-Evil: 1']] } }), /one-line values/);
    assert.throws(() => parseCommand({ id: 5, type: 'replayRequest', request: 7, edit: { headers: [['Bad Name', 'v']] } }), /valid header names/);
    assert.throws(() => parseCommand({ id: 6, type: 'inspectRequest', request: 0 }), /"request" must be an integer/);
  });

  it('without the inspector: requests says it is off, inspectRequest answers CONTROL_INSPECTOR_OFF', async () => {
    const target = createFakeTarget();
    const list = await handleCommandText(JSON.stringify({ id: 1, type: 'requests' }), target);
    assert.deepEqual(list.reply, { type: 'reply', id: 1, ok: true, result: { enabled: false, requests: [] } });
    const inspect = await handleCommandText(JSON.stringify({ id: 2, type: 'inspectRequest', request: 1 }), target);
    assert.equal(inspect.reply.ok, false);
    assert.equal(inspect.reply.ok === false && inspect.reply.error.code, 'CONTROL_INSPECTOR_OFF');
  });
});
