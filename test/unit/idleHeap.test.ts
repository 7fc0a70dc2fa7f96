import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import { IdleHeap } from '../../server/idleHeap';

/** Drives the checks by hand: `requests` is the activity the heap watches. */
function watched(options: { quietChecks?: number; minRequests?: number } = {}) {
  const state = { requests: 0, collections: [] as Array<{ before: number; after: number }> };
  const heap = new IdleHeap({ activity: () => state.requests, ...options, collected: (before, after) => void state.collections.push({ before, after }) });
  return { state, heap };
}

test('collects once the front has been quiet for its quiet checks, and not while requests come', () => {
  const { state, heap } = watched({ quietChecks: 3, minRequests: 100 });
  // The start's own garbage: the first quiet spell collects it.
  assert.deepEqual([heap.check(), heap.check(), heap.check()], [false, false, true]);
  for (let i = 0; i < 10; i++) {
    state.requests += 50;
    assert.equal(heap.check(), false, 'requests still arriving');
  }
  assert.deepEqual([heap.check(), heap.check(), heap.check()], [false, false, true]);
  assert.equal(state.collections.length, 2);
  // Quiet on: nothing more to collect until the next spell.
  for (let i = 0; i < 10; i++) assert.equal(heap.check(), false);
});

test('a spell of fewer requests than minRequests is not worth a collection; spells add up', () => {
  const { state, heap } = watched({ quietChecks: 1, minRequests: 100 });
  assert.equal(heap.check(), true); // the start's
  state.requests += 60;
  heap.check(); // activity seen
  assert.equal(heap.check(), false, '60 requests since the last collection');
  state.requests += 60;
  heap.check();
  assert.equal(heap.check(), true, '120 requests since the last collection');
});

test('the collection is a real full GC: garbage the heap held is gone after it', () => {
  const { state, heap } = watched({ quietChecks: 1, minRequests: 1 });
  heap.check(); // the start's
  let garbage: unknown[] | undefined = [];
  for (let i = 0; i < 300_000; i++) garbage.push({ i, text: `item ${i}` });
  const holding = v8.getHeapStatistics().used_heap_size;
  garbage = undefined;
  state.requests += 1;
  heap.check();
  assert.equal(heap.check(), true);
  const freed = holding - v8.getHeapStatistics().used_heap_size;
  assert.ok(freed > 10 * 1024 * 1024, `freed ${freed} bytes of some 20 MB of dropped objects`);
  assert.ok(state.collections[1].after < state.collections[1].before + 1024 * 1024, 'the heap did not grow across the collection');
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'gc() is not left on the global object');
});
