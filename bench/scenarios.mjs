// The named scenarios. Each runs against every stack listed in `stacks`, interleaved
// (one run of each stack per round), so slow drift of the machine's load hits all alike.
export const SCENARIOS = [
  {
    name: 'hello',
    title: 'Flask hello through the proxy',
    what: 'GET / → the pool → Flask returns "Hello, World!" (13 bytes). Proxy + worker protocol + WSGI cost per request.',
    path: '/',
    connections: 64,
    stacks: ['ng', 'ss', 'ss0'],
  },
  {
    name: 'static',
    title: '1 KiB static file',
    what: 'GET /static/1k.txt, answered by the proxy itself (nginx, or ServeStack\'s static route); Python is not involved. ServeStack strict mode is skipped: dispatch does not touch static routes.',
    path: '/static/1k.txt',
    connections: 64,
    stacks: ['ng', 'ss'],
  },
  {
    name: 'mixed',
    title: 'mixed: 10% of requests sleep 50 ms, 64 connections',
    what: 'One request in 10 goes to /slow (time.sleep(0.05)), the others to /fast. The workers are saturated (the slow requests alone ask for more than 2 workers can give), so this shows the order in which queued requests are served: fast-request latency separately from slow.',
    lua: 'mixed.lua',
    args: ['10'],
    path: '/',
    connections: 64,
    stacks: ['ng', 'ss', 'ss0'],
  },
  {
    name: 'mixed-light',
    title: 'mixed: 10% of requests sleep 50 ms, 4 connections',
    what: 'The same mix with only 4 connections: at most 2 requests wait. Here a fast request queued behind a slow one on a busy worker, while the other worker could take it, shows up directly in the fast requests\' p90/p99.',
    lua: 'mixed.lua',
    args: ['10'],
    path: '/',
    connections: 4,
    stacks: ['ng', 'ss', 'ss0'],
  },
];
