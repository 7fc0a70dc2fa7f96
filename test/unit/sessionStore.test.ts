// The extension's session store (extension/sessionStore.ts) is plain logic: the control
// events it is fed become the pools, workers and figures every view reads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionStore } from '../../extension/sessionStore';
import type { PoolInfo, Snapshot, WorkerInfo } from '../../server/protocol';

const pool: PoolInfo = { name: 'web', kind: 'python', app: 'app:app', wanted: 2, state: 'running' };
const worker = (id: number, state: WorkerInfo['state'], requests = 0): WorkerInfo => ({ id, pool: 'web', pid: 100 + id, state, requests, inFlight: 0, startedAt: 0, generation: 1 });
const snapshot: Snapshot = {
  protocol: 1,
  server: { pid: 1, version: '0', dir: '/srv', url: 'http://127.0.0.1:8080/', startedAt: 0 },
  pools: [pool],
  workers: [worker(1, 'idle'), worker(2, 'booting')],
  routes: [{ path: '/', kind: 'pool', target: 'web', index: 0 }],
};

describe('session store', () => {
  it('mirrors the snapshot, then worker events (figures move, exits leave)', () => {
    const store = new SessionStore();
    let changes = 0;
    store.onDidChange(() => changes++);
    store.applySnapshot(snapshot);
    assert.equal(store.url, 'http://127.0.0.1:8080/');
    assert.deepEqual(store.workersOf('web').map((w) => w.id), [1, 2]);
    assert.equal(store.upWorkers('web'), 1);
    store.applyEvent({ type: 'worker', worker: worker(2, 'idle') });
    store.applyEvent({ type: 'worker', worker: worker(1, 'busy', 41) });
    assert.equal(store.workers.get(1)?.requests, 41);
    assert.equal(store.upWorkers('web'), 2);
    store.applyEvent({ type: 'worker', worker: { ...worker(2, 'exited'), exitCode: 0 } });
    assert.deepEqual([...store.workers.keys()], [1]);
    assert.ok(changes >= 4);
  });

  it('is settled when every pool has its wanted workers while running, or one cannot load', () => {
    const store = new SessionStore();
    store.setState('running');
    store.applySnapshot(snapshot);
    assert.deepEqual(store.readiness(), { up: 1, wanted: 2, settled: false });
    store.applyEvent({ type: 'worker', worker: worker(2, 'idle') });
    assert.deepEqual(store.readiness(), { up: 2, wanted: 2, settled: true });
    store.applyEvent({ type: 'pool', pool: { ...pool, wanted: 3 } });
    assert.equal(store.readiness().settled, false);
    store.applyEvent({ type: 'pool', pool: { ...pool, wanted: 3, state: 'backoff', failure: 'boom' } });
    assert.equal(store.readiness().settled, true);
  });

  it('reports each distinct pool failure once, with its data', () => {
    const store = new SessionStore();
    const failures: PoolInfo[] = [];
    store.onPoolFailure((p) => failures.push(p));
    const failing: PoolInfo = { ...pool, state: 'backoff', failure: "the app 'app:app' could not be loaded: app.py:3: boom", failureDetail: { code: 'APP_LOAD_FAILED', message: 'boom', file: 'app.py', line: 3 } };
    store.applyEvent({ type: 'pool', pool: failing });
    store.applyEvent({ type: 'pool', pool: failing });
    store.applyEvent({ type: 'pool', pool: { ...failing, failure: 'other', failureDetail: { code: 'APP_LOAD_FAILED', message: 'other' } } });
    assert.equal(failures.length, 2);
    assert.deepEqual(failures[0].failureDetail, { code: 'APP_LOAD_FAILED', message: 'boom', file: 'app.py', line: 3 });
  });

  it('hands every event on (the dashboard webview relays them) and forgets the server on exit', () => {
    const store = new SessionStore();
    const seen: string[] = [];
    store.onEvent((e) => seen.push(e.type));
    store.applySnapshot(snapshot);
    store.applyEvent({ type: 'requests', requests: [] });
    store.applyEvent({ type: 'metrics', metrics: { time: 0, rps: 5, status: { '2xx': 5, '3xx': 0, '4xx': 0, '5xx': 0 }, routes: {}, pools: {} } });
    assert.deepEqual(seen, ['requests', 'metrics']);
    assert.equal(store.metrics?.rps, 5);
    store.clearServerState();
    assert.equal(store.workers.size, 0);
    assert.equal(store.metrics, undefined);
  });
});
