import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger } from '../../server/log';

test('the log keeps the latest lines, fewer access lines than others, in time order', () => {
  const logger = new Logger(undefined, 'info', 5, 2);
  for (let i = 0; i < 8; i++) {
    logger.info('server', `server ${i}`);
    logger.log('info', 'access', `access ${i}`);
  }
  const texts = logger.recentLines(100).map((l) => l.text);
  assert.deepEqual(texts.filter((t) => t.startsWith('server')), ['server 3', 'server 4', 'server 5', 'server 6', 'server 7']);
  assert.deepEqual(texts.filter((t) => t.startsWith('access')), ['access 6', 'access 7']);
  assert.deepEqual(logger.recentLines(2).length, 2);
  const times = logger.recentLines(100).map((l) => l.time);
  assert.deepEqual(times, [...times].sort((a, b) => a - b));
});

test('listeners get every line, console or not', () => {
  const logger = new Logger(undefined);
  const seen: string[] = [];
  logger.onLine((l) => seen.push(`${l.source}:${l.text}`));
  logger.warn('config', 'careful');
  logger.log('info', 'access', 'GET /');
  assert.deepEqual(seen, ['config:careful', 'access:GET /']);
});

test('the console gets every line at or above its level, in order, in batched writes', async () => {
  const writes: string[] = [];
  const logger = new Logger((bytes, written) => {
    writes.push(Buffer.from(bytes).toString('utf8'));
    setImmediate(written);
  }, 'info');
  logger.info('server', 'listening');
  logger.debug('server', 'not shown');
  for (let i = 0; i < 3; i++) logger.log('info', 'access', `127.0.0.1 - - "GET /${i} HTTP/1.1" 200`);
  logger.log('warn', 'worker', 'Traceback…', { pool: 'web', workerId: 2 });
  assert.deepEqual(writes, [], 'nothing is written before the end of the turn');
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(writes.length, 1, 'one write for the turn');
  assert.equal(
    writes.join(''),
    '[server] listening\n127.0.0.1 - - "GET /0 HTTP/1.1" 200\n127.0.0.1 - - "GET /1 HTTP/1.1" 200\n127.0.0.1 - - "GET /2 HTTP/1.1" 200\n[web:2] warn: Traceback…\n',
  );
  logger.info('server', 'later');
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(writes.at(-1), '[server] later\n');
});
