// turnEnd: the front's writes held to the end of the event-loop turn, workers' first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { atTurnEndForClients, atTurnEndForWorkers } from '../../server/turnEnd';

const nextTurn = () => new Promise<void>((done) => setImmediate(done));

test("a turn's worker writes run before its client writes, whatever order they were queued in", async () => {
  const order: string[] = [];
  atTurnEndForClients(() => order.push('client 1'));
  atTurnEndForWorkers(() => order.push('worker 1'));
  atTurnEndForClients(() => order.push('client 2'));
  atTurnEndForWorkers(() => order.push('worker 2'));
  assert.deepEqual(order, [], 'nothing is written while the turn runs');
  await nextTurn();
  assert.deepEqual(order, ['worker 1', 'worker 2', 'client 1', 'client 2']);
});

test('a write queued by a write of the same phase runs in the same turn; a worker write queued by a client write, at the next', async () => {
  const order: string[] = [];
  atTurnEndForWorkers(() => {
    order.push('worker');
    atTurnEndForWorkers(() => order.push('worker, queued by a worker write'));
  });
  atTurnEndForClients(() => {
    order.push('client');
    atTurnEndForClients(() => order.push('client, queued by a client write'));
    atTurnEndForWorkers(() => order.push('worker, queued by a client write'));
  });
  let turnOneEnded = false;
  setImmediate(() => (turnOneEnded = true)); // queued after the turn end's own setImmediate
  await nextTurn();
  assert.equal(turnOneEnded, true);
  assert.deepEqual(order, ['worker', 'worker, queued by a worker write', 'client', 'client, queued by a client write']);
  await nextTurn();
  assert.deepEqual(order.at(-1), 'worker, queued by a client write');
});

test('a write that throws does not keep the others from their sockets, and its error still surfaces', () => {
  // In a process of its own: the error is thrown out of setImmediate, as an uncaught exception.
  const script = `
    const { atTurnEndForClients, atTurnEndForWorkers } = require(${JSON.stringify(resolve(__dirname, '../../server/turnEnd.ts'))});
    atTurnEndForWorkers(() => { throw new Error('worker write failed'); });
    atTurnEndForWorkers(() => console.log('second worker write ran'));
    atTurnEndForClients(() => console.log('client write ran'));
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.stdout, 'second worker write ran\nclient write ran\n');
  assert.match(run.stderr, /worker write failed/);
  assert.notEqual(run.status, 0);
});
