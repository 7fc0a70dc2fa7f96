// Sizes, durations and rates as written in servestack.json.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { parseDuration, parseRate, parseSize } from '../../server/config/units';

describe('parseSize', () => {
  test('reads bytes and k/m/g (powers of 1024, either case)', () => {
    assert.equal(parseSize(0).value, 0);
    assert.equal(parseSize(1500).value, 1500);
    assert.equal(parseSize('1024').value, 1024);
    assert.equal(parseSize('512k').value, 512 * 1024);
    assert.equal(parseSize('10m').value, 10 * 1024 ** 2);
    assert.equal(parseSize('10M').value, 10 * 1024 ** 2);
    assert.equal(parseSize('1g').value, 1024 ** 3);
    assert.equal(parseSize('1.5k').value, 1536);
  });

  test('says what a size is when given something else', () => {
    assert.equal(parseSize('10x').error, '\'10x\' is not a size; use a number of bytes or a number with k, m or g, e.g. "10m"');
    assert.match(parseSize(-1).error ?? '', /whole number of bytes ≥ 0/);
    assert.match(parseSize(1.5).error ?? '', /whole number of bytes/);
    assert.match(parseSize(true).error ?? '', /^true is not a size/);
    assert.match(parseSize('10 m').error ?? '', /is not a size/);
    assert.match(parseSize('99999999999g').error ?? '', /too large/);
  });
});

describe('parseDuration', () => {
  test('reads ms, s, m, h and numbers of seconds, in milliseconds', () => {
    assert.equal(parseDuration('500ms').value, 500);
    assert.equal(parseDuration('30s').value, 30_000);
    assert.equal(parseDuration('2m').value, 120_000);
    assert.equal(parseDuration('1h').value, 3_600_000);
    assert.equal(parseDuration('0.5s').value, 500);
    assert.equal(parseDuration(30).value, 30_000);
    assert.equal(parseDuration(0.25).value, 250);
    assert.equal(parseDuration(0).value, 0);
  });

  test('says what a duration is, and spots a forgotten unit', () => {
    assert.equal(parseDuration('3x').error, '\'3x\' is not a duration; use a number of seconds or a number with ms, s, m or h, e.g. "30s"');
    assert.equal(parseDuration('30').error, '\'30\' has no unit; write "30s" for seconds, or the number 30 without quotes');
    assert.match(parseDuration(-1).error ?? '', /seconds ≥ 0/);
    assert.match(parseDuration(null).error ?? '', /^null is not a duration/);
  });
});

describe('parseRate', () => {
  test('reads a count per second, minute or hour (and NGINX\'s "r/s")', () => {
    assert.deepEqual(parseRate('20/s').value, { count: 20, perMs: 1000 });
    assert.deepEqual(parseRate('100/m').value, { count: 100, perMs: 60_000 });
    assert.deepEqual(parseRate('1000/h').value, { count: 1000, perMs: 3_600_000 });
    assert.deepEqual(parseRate('5r/s').value, { count: 5, perMs: 1000 });
  });

  test('says what a rate is, and refuses a rate of zero', () => {
    assert.equal(parseRate('fast').error, '\'fast\' is not a rate; use a count per s, m or h, e.g. "20/s" or "100/m"');
    assert.match(parseRate(20).error ?? '', /^20 is not a rate/);
    assert.match(parseRate('0/s').error ?? '', /at least 1/);
    assert.match(parseRate('20/d').error ?? '', /is not a rate/);
  });
});
