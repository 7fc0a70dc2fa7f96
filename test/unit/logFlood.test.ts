import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogFlood, parseAccess, type ShownLine } from '../../extension/logFlood';
import type { LogLine } from '../../server/protocol';

const access = (path: string, status: number, time = 0): LogLine => ({
  time, level: 'info', source: 'access',
  text: `127.0.0.1 - - [01/Dec/2026:12:00:00 +0000] "GET ${path} HTTP/1.1" ${status} 12 "-" "wrk" rt=0.001 urt=0.001 w=web:1`,
});
const traceback: LogLine = { time: 0, level: 'error', source: 'worker', pool: 'web', text: 'Traceback (most recent call last):\n  File "/srv/app.py", line 9, in index\nZeroDivisionError: division by zero' };

/** Pushes `n` requests evenly over `ms` starting at `start`; the traceback goes in at request `errorAt`. */
function flood(f: LogFlood, n: number, ms: number, status: (i: number) => number, errorAt = -1, start = 0): ShownLine[] {
  const shown: ShownLine[] = [];
  for (let i = 0; i < n; i++) {
    const now = start + (i * ms) / n;
    if (i === errorAt) shown.push(...f.push(traceback, traceback.text, now));
    const line = access(`/load/${i}`, status(i), now);
    shown.push(...f.push(line, line.text, now));
  }
  return shown;
}

test('reads method, path and status from an access line', () => {
  assert.deepEqual(parseAccess(access('/a?b=1', 404).text), { method: 'GET', path: '/a?b=1', status: 404 });
  assert.equal(parseAccess('worker 1 ready'), undefined);
});

test('a flood of 10,000 requests collapses into counts; the traceback in the middle is shown whole, and nothing is lost from the counts', () => {
  const f = new LogFlood();
  const status = (i: number) => (i % 100 === 0 ? 500 : 200);
  const shown = [...flood(f, 10_000, 5_000, status, 5_000), ...f.tick(10_000)];
  assert.ok(shown.length < 200, `${shown.length} lines shown for 10,000 requests`);
  assert.ok(shown.some((l) => l.level === 'error' && l.text === traceback.text), 'the traceback is shown');
  const summaries = shown.filter((l) => l.text.startsWith('… '));
  assert.ok(summaries.length >= 1);
  assert.match(summaries[0].text, /^… [\d,]+ more requests in the last \d+ s: [\d,]+ 2xx, [\d,]+ 5xx/);
  // Every request is either a line of its own or in a count.
  const shownRequests = shown.filter((l) => parseAccess(l.text)).length;
  const counted = summaries.reduce((n, l) => n + Number(/^… ([\d,]+)/.exec(l.text)![1].replace(/,/g, '')), 0);
  assert.equal(shownRequests + counted, 10_000);
  // The 500s have their own budget: some are shown even though 2xx lines fill theirs.
  assert.ok(shown.filter((l) => / 500 /.test(l.text)).length >= 10, '500s are not crowded out by 200s');
});

test('a quiet stream shows every line; the counts come once a window has passed, even when the flood has stopped', () => {
  const f = new LogFlood({ burst: 5, perSecond: 1, windowMs: 5000, keep: 100 });
  const quiet = flood(f, 5, 1000, () => 200);
  assert.equal(quiet.length, 5);
  const burst = flood(f, 50, 100, () => 404, -1, 2000);
  assert.ok(burst.length < 10);
  assert.deepEqual(f.tick(3000), [], 'not before the window ends');
  const [summary] = f.tick(8000);
  assert.match(summary.text, /^… 4\d more requests in the last 6 s: 4\d 4xx/);
  assert.deepEqual(f.tick(20_000), [], 'once');
});

test('filters: only errors, one route, one status class; errors always show, and a new filter replays what it matches', () => {
  const f = new LogFlood({ burst: 1000, perSecond: 1000, windowMs: 5000, keep: 100 });
  const lines = [access('/api/users', 200), access('/api/users', 503), access('/static/a.css', 304), access('/apiary', 200), traceback,
    { time: 0, level: 'info', source: 'worker', text: 'print() output' } as LogLine];
  for (const l of lines) f.push(l, l.text, 0);
  const texts = (out: ShownLine[]) => out.map((l) => parseAccess(l.text)?.path ?? l.text.split('\n')[0]);
  assert.deepEqual(texts(f.setFilter({ kind: 'errors' }, 1)), ['/api/users', 'Traceback (most recent call last):']);
  assert.deepEqual(texts(f.setFilter({ kind: 'route', prefix: '/api/' }, 1)), ['/api/users', '/api/users', 'Traceback (most recent call last):']);
  assert.deepEqual(texts(f.setFilter({ kind: 'route', prefix: '/api' }, 1)), ['/api/users', '/api/users', 'Traceback (most recent call last):']);
  assert.deepEqual(texts(f.setFilter({ kind: 'status', status: '3xx' }, 1)), ['/static/a.css', 'Traceback (most recent call last):']);
  const live = access('/static/b.css', 200);
  assert.deepEqual(f.push(live, live.text, 2), [], 'a 200 is hidden while the filter shows 3xx');
  assert.equal(f.setFilter({ kind: 'all' }, 3).length, lines.length + 1);
  assert.equal(f.describeFilter(), 'everything');
});
