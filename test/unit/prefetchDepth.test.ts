import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prefetchDepth } from '../../server/pool/pool';

test('prefetch commits a quarter of a worker\'s share of the outstanding requests, at least two', () => {
  // 16 connections on 2 workers: 2 beyond each running one (6 at the workers); the other 10 wait for whichever worker gets free first.
  assert.equal(prefetchDepth(16, 2, 8), 2);
  assert.equal(prefetchDepth(32, 2, 8), 4);
  assert.equal(prefetchDepth(20, 2, 8), 3);
  // A light load still gets two queued behind the running request (no round trip between two).
  assert.equal(prefetchDepth(3, 2, 8), 2);
  assert.equal(prefetchDepth(1, 4, 8), 2);
  assert.equal(prefetchDepth(3, 2, 1), 1);
  // One worker: its share is everything.
  assert.equal(prefetchDepth(16, 1, 8), 4);
});

test('prefetch never goes past --prefetch, and --prefetch 0 stays strictly one at a time', () => {
  assert.equal(prefetchDepth(64, 2, 8), 8);
  assert.equal(prefetchDepth(1000, 2, 8), 8);
  assert.equal(prefetchDepth(64, 2, 3), 3);
  assert.equal(prefetchDepth(64, 2, 0), 0);
  // No worker accepting yet (all starting): the share is counted against one.
  assert.equal(prefetchDepth(8, 0, 8), 2);
});
