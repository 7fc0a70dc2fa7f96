// Request metrics: percentiles on known data, status classes, per route and pool, queue
// depth, and a fresh window after each sample.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketOf, createMetrics, HISTOGRAM_BUCKETS } from '../../server/control/metrics';

function within(actual: number, expected: number, relative: number): void {
  assert.ok(Math.abs(actual - expected) <= expected * relative, `${actual} is not within ${relative * 100}% of ${expected}`);
}

describe('control metrics', () => {
  it('p50, p95 and p99 of 1..1000 ms are within 5% of the exact values', () => {
    let t = 0;
    const m = createMetrics(() => t);
    // Shuffled order: the histogram must not depend on it.
    const values = Array.from({ length: 1000 }, (_, i) => i + 1).sort((a, b) => ((a * 7919) % 1000) - ((b * 7919) % 1000));
    for (const v of values) m.record({ route: '/', pool: 'web', status: 200, ms: v });
    t = 1000;
    const s = m.sample();
    within(s.routes['/'].p50Ms, 500, 0.05);
    within(s.routes['/'].p95Ms, 950, 0.05);
    within(s.routes['/'].p99Ms, 990, 0.05);
    within(s.pools.web.p50Ms, 500, 0.05);
    assert.equal(s.routes['/'].requests, 1000);
    assert.equal(s.rps, 1000);
  });

  it('a window of equal latencies reports exactly that latency (clamped to the observed range)', () => {
    const m = createMetrics();
    for (let i = 0; i < 50; i++) m.recordRequest('/api/', 'web', 200, 3.7);
    const s = m.sample();
    assert.equal(s.routes['/api/'].p50Ms, 3.7);
    assert.equal(s.routes['/api/'].p99Ms, 3.7);
  });

  it('p99 catches a slow tail that p50 ignores', () => {
    const m = createMetrics();
    for (let i = 0; i < 980; i++) m.recordRequest('/', 'web', 200, 2);
    for (let i = 0; i < 20; i++) m.recordRequest('/', 'web', 200, 800);
    const s = m.sample();
    within(s.routes['/'].p50Ms, 2, 0.05);
    within(s.routes['/'].p99Ms, 800, 0.05);
  });

  it('counts status classes per route, per pool and in total', () => {
    const m = createMetrics();
    m.record({ route: '/static/', status: 200, ms: 1 });
    m.record({ route: '/static/', status: 304, ms: 1 });
    m.record({ route: '/api/', pool: 'web', status: 404, ms: 1 });
    m.record({ route: '/api/', pool: 'web', status: 502, ms: 1 });
    m.record({ route: '/api/', pool: 'web', status: 503, ms: 1 });
    const s = m.sample();
    assert.deepEqual(s.status, { '2xx': 1, '3xx': 1, '4xx': 1, '5xx': 2 });
    assert.deepEqual(s.routes['/static/'].status, { '2xx': 1, '3xx': 1, '4xx': 0, '5xx': 0 });
    assert.deepEqual(s.pools.web.status, { '2xx': 0, '3xx': 0, '4xx': 1, '5xx': 2 });
    assert.equal(s.pools['/static/'], undefined);
  });

  it('reports queue depth for every pool the source names, even without requests', () => {
    const m = createMetrics();
    m.setQueueDepthSource(() => ({ web: 4, idle: 0 }));
    m.record({ route: '/', pool: 'web', status: 200, ms: 1 });
    const s = m.sample();
    assert.equal(s.pools.web.queueDepth, 4);
    assert.equal(s.pools.web.requests, 1);
    assert.deepEqual(s.pools.idle, { requests: 0, rps: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, status: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, queueDepth: 0 });
  });

  it('a failing queue depth source does not stop sampling', () => {
    const m = createMetrics();
    m.setQueueDepthSource(() => {
      throw new Error('boom');
    });
    m.record({ route: '/', pool: 'web', status: 200, ms: 1 });
    assert.equal(m.sample().pools.web.queueDepth, 0);
  });

  it('each sample covers only the window since the previous one', () => {
    let t = 0;
    const m = createMetrics(() => t);
    for (let i = 0; i < 10; i++) m.record({ route: '/', status: 200, ms: 100 });
    t = 500;
    const first = m.sample();
    assert.equal(first.rps, 20);
    t = 1500;
    const second = m.sample();
    assert.equal(second.rps, 0);
    assert.deepEqual(second.routes, {});
    m.record({ route: '/', status: 200, ms: 1 });
    t = 2500;
    const third = m.sample();
    assert.equal(third.routes['/'].p99Ms, 1);
  });

  it('puts every latency in a bucket, including 0, NaN and hours', () => {
    for (const v of [0, -1, NaN, 0.001, 0.01, 0.0101, 1, 1000, 3_600_000, Infinity]) {
      const b = bucketOf(v);
      assert.ok(Number.isInteger(b) && b >= 0 && b < HISTOGRAM_BUCKETS, `${v} → ${b}`);
    }
    assert.ok(bucketOf(2) > bucketOf(1));
  });

  it('keeps a bounded number of keys when fed many distinct routes', () => {
    const m = createMetrics();
    for (let i = 0; i < 5000; i++) m.record({ route: `/r${i}`, status: 200, ms: 1 });
    const s = m.sample();
    assert.ok(Object.keys(s.routes).length <= 1001);
    assert.equal(s.routes['(other)'].requests, 4000);
  });
});
