import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConsoleBytes } from '../../server/consoleBytes';

const text = (pieces: Buffer[]) => Buffer.concat(pieces).toString('utf8');

test('lines come out in order, as UTF-8, across chunk boundaries and long texts', () => {
  const bytes = new ConsoleBytes();
  const expected: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const line = `GET /${i} ${'x'.repeat(i % 97)} é→€ 😀`;
    bytes.append(line, true);
    expected.push(line + '\n');
    if (i === 1500) {
      const long = 'L'.repeat(70 * 1024) + '\n';
      bytes.append(long, false);
      expected.push(long);
    }
  }
  const pieces = bytes.take();
  assert.ok(pieces.length > 1, 'more than one chunk was filled');
  assert.equal(text(pieces), expected.join(''));
  assert.ok(bytes.empty);
  assert.deepEqual(bytes.take(), []);
});

test('a taken piece keeps its bytes until done(), while more lines are appended', () => {
  const bytes = new ConsoleBytes();
  bytes.append('first', true);
  const [first] = bytes.take();
  for (let i = 0; i < 5000; i++) bytes.append(`line ${i}`, true);
  assert.equal(first.toString(), 'first\n', 'appending after take() did not write over a piece still being written');
  bytes.done(first);
  const rest = bytes.take();
  assert.equal(text(rest), Array.from({ length: 5000 }, (_, i) => `line ${i}\n`).join(''));
});

test('a chunk given back with done() is filled again, and a long text\'s own buffer is not', () => {
  const bytes = new ConsoleBytes();
  bytes.append('a', true);
  const [a] = bytes.take();
  bytes.done(a);
  bytes.append('b', true);
  const [b] = bytes.take();
  assert.equal(b.buffer, a.buffer, 'the spare chunk was reused');
  assert.equal(b.toString(), 'b\n');

  bytes.append('z'.repeat(80 * 1024), false);
  const [long] = bytes.take();
  bytes.done(long);
  bytes.append('c', false);
  const [c] = bytes.take();
  assert.notEqual(c.buffer, long.buffer, 'a long text\'s buffer never becomes a chunk');
  assert.equal(c.toString(), 'c');
});
