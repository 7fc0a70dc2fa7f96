// The named scenarios. Each runs against every stack listed in `stacks`, interleaved
// (one run of each stack per round), so slow drift of the machine's load hits all alike.
// `name` selects a family (`--scenarios hello` = hello at c=16 and c=64), `id` one entry.
// `anchor` is the stack the others are divided by in the ratios and targets.
// `checks` are asked of every stack in the scenario before anything is measured.
import { STATIC_BYTES, STATIC_FILE } from './lib/stacks.mjs';

const HELLO = 'Hello, World!';

const bodyIs = (want) => (res) => (res.status === 200 && res.body.toString() === want ? undefined : `answered ${res.status} ${JSON.stringify(res.body.toString().slice(0, 120))}, want 200 ${JSON.stringify(want)}`);

const helloCheck = { path: '/', test: bodyIs(HELLO) };

const json1kCheck = {
  path: '/json',
  test: (res) => {
    let doc;
    try {
      doc = JSON.parse(res.body.toString());
    } catch {
      // reported below
    }
    const ok = res.status === 200 && /^application\/json/.test(res.headers['content-type'] ?? '') && doc?.count === 16 && res.body.length > 1000 && res.body.length < 1100;
    return ok ? undefined : `answered ${res.status} (${res.headers['content-type']}) with ${res.body.length} bytes, want 200 application/json, about 1 KiB, count 16`;
  },
};

const staticCheck = {
  path: `/${STATIC_FILE}`,
  test: (res) => (res.status === 200 && res.body.equals(STATIC_BYTES) ? undefined : `answered ${res.status} with ${res.body.length} bytes, not the 1024-byte file`),
};

const slowCheck = (path, minMs, echo) => ({
  path,
  headers: echo ? { 'X-Id': '42' } : {},
  test: (res) => (res.status === 200 && (!echo || res.headers['x-id'] === '42') && res.ms >= minMs * 0.9 ? undefined : `answered ${res.status}${echo ? `, X-Id ${res.headers['x-id']}` : ''}, in ${res.ms.toFixed(1)} ms (want 200${echo ? ', X-Id 42' : ''}, ≥ ${minMs} ms)`),
});

const fastapiCheck = { path: '/', test: bodyIs(JSON.stringify({ message: HELLO })) };

const WSGI = ['ng', 'ss', 'ss0'];

const hello = (connections) => ({
  id: `hello-c${connections}`,
  name: 'hello',
  title: `Flask hello through the proxy, ${connections} connections`,
  what: 'GET / → the pool → Flask returns "Hello, World!" (13 bytes). Proxy + worker protocol + WSGI cost per request.',
  path: '/',
  connections,
  stacks: WSGI,
  anchor: 'ng',
  checks: [helloCheck],
});

const json = (connections) => ({
  id: `json-c${connections}`,
  name: 'json',
  title: `Flask 1 KiB JSON (jsonify), ${connections} connections`,
  what: 'GET /json → Flask serializes 16 items with jsonify on every request (1,015 bytes).',
  path: '/json',
  connections,
  stacks: ['ng', 'ss'],
  anchor: 'ng',
  checks: [json1kCheck],
});

export const SCENARIOS = [
  {
    id: 'cold-start',
    name: 'cold-start',
    kind: 'cold-start',
    title: 'cold start to the first 200',
    what: 'Spawn `node dist/cli.js serve` of the Flask app (2 workers) and poll GET / every 10 ms until it answers 200; median of 3 (--cold-runs). Measured before any stack starts.',
    stacks: ['ss'],
  },
  hello(16),
  hello(64),
  json(16),
  json(64),
  {
    id: 'mixed-200',
    name: 'mixed-200',
    title: 'fast requests beside one client looping a 200 ms request, 16 connections',
    what: 'wrk keeps 15 connections on GET / (Flask hello) while one more connection (the runner, keep-alive) loops GET /slow200, which sleeps 200 ms. The fast requests\' p99 shows whether any of them waits behind the slow one while the other worker could take it.',
    path: '/',
    connections: 16,
    wrkConnections: 15,
    looper: { path: '/slow200' },
    stacks: WSGI,
    anchor: 'ng',
    checks: [helloCheck, slowCheck('/slow200', 200, false)],
  },
  {
    id: 'static',
    name: 'static',
    title: '1 KiB static file, 64 connections',
    what: 'GET /static/1k.txt, answered by the front itself (nginx from disk, ServeStack\'s static route, or the bare node:http ceiling from memory); Python is not involved.',
    path: `/${STATIC_FILE}`,
    connections: 64,
    stacks: ['ng', 'ss', 'node'],
    anchor: 'node',
    checks: [staticCheck],
  },
  {
    id: 'fastapi',
    name: 'fastapi',
    title: 'FastAPI hello, 64 connections',
    what: 'GET / → FastAPI\'s async hello returning {"message": "Hello, World!"}: nginx → uvicorn (2 workers, uvloop, httptools) vs ServeStack\'s ASGI runtime (2 workers).',
    path: '/',
    connections: 64,
    stacks: ['nu', 'ssa'],
    anchor: 'nu',
    checks: [fastapiCheck],
  },
  {
    id: 'threads',
    name: 'threads',
    title: 'I/O-bound endpoint (waits 10 ms), threads, 64 connections',
    what: 'GET /io → Flask waits 10 ms (time.sleep: the GIL is free, as in a query) and answers. 2 workers of 4 threads each: gunicorn\'s gthread vs a ServeStack pool with "threads": 4 (at most 800 req/s either way); beside them the same 2 workers with one thread (at most 200).',
    path: '/io',
    connections: 64,
    stacks: ['ngt', 'sst', 'ng', 'ss'],
    anchor: 'ngt',
    checks: [slowCheck('/io', 10, false)],
  },
  {
    id: 'mixed',
    name: 'mixed',
    title: 'mixed: 10% of requests sleep 50 ms, 64 connections',
    what: 'One request in 10 goes to /slow (time.sleep(0.05)), the others to /fast. The workers are saturated (the slow requests alone ask for more than 2 workers can give), so this shows the order in which queued requests are served: fast-request latency separately from slow.',
    lua: 'mixed.lua',
    args: ['10'],
    path: '/',
    connections: 64,
    stacks: WSGI,
    anchor: 'ng',
    checks: [slowCheck('/slow', 50, true)],
  },
  {
    id: 'mixed-light',
    name: 'mixed-light',
    title: 'mixed: 10% of requests sleep 50 ms, 4 connections',
    what: 'The same mix with only 4 connections: at most 2 requests wait. Here a fast request queued behind a slow one on a busy worker, while the other worker could take it, shows up directly in the fast requests\' p90/p99.',
    lua: 'mixed.lua',
    args: ['10'],
    path: '/',
    connections: 4,
    stacks: WSGI,
    anchor: 'ng',
    checks: [slowCheck('/slow', 50, true)],
  },
];
