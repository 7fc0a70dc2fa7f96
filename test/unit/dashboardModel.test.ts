// The dashboard page's model (media/dashboard/src/model.ts) without a browser: control
// events in, the series the charts draw and the rows the tables show out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DashboardModel, exitReason, WINDOW_SECONDS } from '../../media/dashboard/src/model';
import type { MetricsSample, RouteMetrics, WorkerInfo } from '../../server/protocol';

const route = (requests: number, s5 = 0): RouteMetrics => ({ requests, rps: requests, p50Ms: 2, p95Ms: 5, p99Ms: 9, status: { '2xx': requests - s5, '3xx': 0, '4xx': 0, '5xx': s5 } });
const sample = (t: number, api: number, root: number): MetricsSample => ({
  time: t * 1000,
  rps: api + root,
  status: { '2xx': api + root - 1, '3xx': 0, '4xx': 0, '5xx': 1 },
  routes: { '/api/': route(api, 1), '/': route(root) },
  pools: { web: { ...route(api + root, 1), queueDepth: 3 } },
});
const worker = (id: number, extra: Partial<WorkerInfo> = {}): WorkerInfo => ({ id, pool: 'web', pid: 100 + id, state: 'idle', requests: 0, inFlight: 0, startedAt: 0, generation: 1, ...extra });

describe('dashboard model', () => {
  it('draws the totals, or one route or pool, with the error rate', () => {
    const m = new DashboardModel();
    m.apply({ type: 'metrics', metrics: sample(1000, 10, 30) });
    m.apply({ type: 'metrics', metrics: sample(1001, 0, 20) });
    assert.deepEqual(m.trafficData(), [[1000, 1001], [40, 20], [2.5, 5]]);
    m.setScope('route:/api/');
    assert.deepEqual(m.trafficData()[1], [10, 0]);
    assert.deepEqual(m.latencyData(), [[1000, 1001], [2, null], [5, null], [9, null]], 'no latency in a second without requests');
    m.setScope('pool:web');
    assert.deepEqual(m.statusData()[4], [1, 1]);
    assert.deepEqual(m.queueData()[1], [3, 3]);
  });

  it('keeps each worker\'s CPU and memory per sample, and only the last minutes', () => {
    const m = new DashboardModel();
    m.apply({ type: 'worker', worker: worker(1, { cpuPercent: 12.5, rssBytes: 20 * 1048576, inFlight: 3 }) });
    m.apply({ type: 'metrics', metrics: sample(1000, 1, 1) });
    m.apply({ type: 'worker', worker: worker(2, { cpuPercent: 1 }) });
    m.apply({ type: 'metrics', metrics: sample(1001, 1, 1) });
    assert.deepEqual(m.workerIds(), [1, 2]);
    assert.deepEqual(m.workerData('cpu', [1, 2]), [[1000, 1001], [12.5, 12.5], [null, 1]]);
    assert.deepEqual(m.workerData('rssMiB', [1]), [[1000, 1001], [20, 20]]);
    assert.deepEqual(m.queueData()[2], [2, 2], 'requests beyond the first at a busy worker');
    m.apply({ type: 'metrics', metrics: sample(1001 + WINDOW_SECONDS + 1, 1, 1) });
    assert.equal(m.samples.length, 1);
  });

  it('lists exits with their reasons, and filters the recent requests by every word', () => {
    const m = new DashboardModel();
    m.apply({ type: 'worker', worker: worker(3) });
    m.apply({ type: 'worker', worker: worker(3, { state: 'exited', exitCode: 4 }) });
    assert.equal(m.exits.length, 1);
    assert.match(m.exits[0].reason, /app failed to load/);
    assert.match(exitReason(worker(1, { state: 'exited', exitCode: null })), /signal/);
    m.apply({ type: 'requests', requests: [
      { id: 1, time: 0, method: 'GET', url: '/api/items', status: 200, ms: 1, route: '/api/', pool: 'web', workerId: 1 },
      { id: 2, time: 0, method: 'POST', url: '/api/items', status: 500, ms: 1, route: '/api/', pool: 'web', workerId: 2 },
      { id: 3, time: 0, method: 'GET', url: '/', status: 200, ms: 1, route: '/', pool: 'web', workerId: 2 },
    ] });
    assert.deepEqual(m.filteredRequests('').map((r) => r.id), [3, 2, 1], 'newest first');
    assert.deepEqual(m.filteredRequests('items w2').map((r) => r.id), [2]);
    assert.deepEqual(m.filteredRequests('post 500').map((r) => r.id), [2]);
  });
});
