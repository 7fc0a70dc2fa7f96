import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wallTimeOf } from '../../server/wallClock';

test('a performance.now() reading maps to the epoch time Date.now() gives beside it', () => {
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    const wall = wallTimeOf(performance.now());
    const after = Date.now();
    // Date.now() is whole milliseconds, the mapped time is not; and on the CI's VMs the
    // two clocks drift apart by up to 3 ms in a process's first second: allow 3 either side.
    assert.ok(wall >= before - 3 && wall <= after + 3, `${wall} not within [${before}, ${after}]`);
  }
});

test('readings keep their order and spacing between resyncs', () => {
  const p = performance.now();
  assert.equal(Math.round((wallTimeOf(p + 250) - wallTimeOf(p)) * 1000), 250_000);
});

test('a reading more than a second away resyncs with the wall clock and still maps near it', async () => {
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const before = Date.now();
  const wall = wallTimeOf(performance.now());
  assert.ok(Math.abs(wall - before) <= 3, `${wall} vs ${before}`);
  // An old reading (a request that arrived 5 s ago) maps to 5 s before now.
  const old = wallTimeOf(performance.now() - 5000);
  assert.ok(Math.abs(old - (Date.now() - 5000)) <= 3, `${old}`);
});
