import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServiceTime } from '../../server/pool/pool';

test('a request is long after 3× the median of recent service times, never under 5 ms', () => {
  const times = new ServiceTime();
  assert.equal(times.slowAfterMs(), 5);
  for (let i = 0; i < 64; i++) times.record(0.4);
  assert.equal(times.slowAfterMs(), 5);
  for (let i = 0; i < 64; i++) times.record(20);
  assert.equal(times.slowAfterMs(), 60);
});

test('a few slow requests do not move the threshold: it follows the median, not the mean', () => {
  const times = new ServiceTime();
  for (let i = 0; i < 64; i++) times.record(i % 10 === 0 ? 200 : 2);
  assert.equal(times.slowAfterMs(), 6);
});

test('the typical service time (the bar for taking a request back from a busy worker) is the median, never under 2 ms', () => {
  const times = new ServiceTime();
  assert.equal(times.typicalMs(), 2);
  for (let i = 0; i < 64; i++) times.record(0.4);
  assert.equal(times.typicalMs(), 2);
  for (let i = 0; i < 64; i++) times.record(i % 10 === 0 ? 200 : 7);
  assert.equal(times.typicalMs(), 7);
});
