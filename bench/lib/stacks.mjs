// The stacks under test, each serving its own copy of the same app folder:
//   ng    nginx (reverse proxy + static files) → gunicorn, 2 sync workers (Flask app)
//   ss    servestack serve, pool of 2 workers, default dispatch (prefetch up to 8, by load) (Flask app)
//   ss0   servestack serve, pool of 2 workers, --prefetch 0 (strictly one request per worker)
//   ngt   nginx → gunicorn, 2 gthread workers of 4 threads each (Flask app)
//   sst   servestack serve, pool of 2 workers, "threads": 4 (Flask app)
//   nu    nginx → uvicorn, 2 workers, uvloop + httptools (FastAPI app)
//   ssa   servestack serve, pool of 2 workers, "interface": "asgi" (the same FastAPI app)
//   node  a bare node:http server answering the 1 KiB static file from memory (the ceiling)
// Each process is charged to a kind ("nginx", "gunicorn", "uvicorn", "node", "python"),
// so CPU and memory are reported per kind as well as per stack.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGroup, stopGroup, waitForHttp } from './procs.mjs';
import { groupCpuByKind, groupCpuSeconds, MemoryTracker } from './procStats.mjs';

export const NGINX = '/usr/sbin/nginx';
export const GUNICORN = '/usr/bin/gunicorn';
export const PYTHON = '/usr/bin/python3';

export const STATIC_FILE = 'static/1k.txt';
export const STATIC_BYTES = staticBytes();

function staticBytes() {
  // 1 KiB of printable text, the same every run.
  const line = 'ServeStack benchmark static file: 1 KiB of text, served by the proxy.\n';
  return Buffer.from(line.repeat(Math.ceil(1024 / line.length)).slice(0, 1024));
}

/** Writes the app folder every stack serves: app.py (Flask), fastapi_app.py, static/1k.txt. */
export function writeAppDir(dir, fixturesDir) {
  mkdirSync(path.join(dir, 'static'), { recursive: true });
  for (const f of ['app.py', 'fastapi_app.py']) copyFileSync(path.join(fixturesDir, f), path.join(dir, f));
  writeFileSync(path.join(dir, STATIC_FILE), STATIC_BYTES);
}

// ServeStack's group holds the Node front (the leader) and the Python workers it spawned.
const serveStackKind = (stat) => (stat.comm.startsWith('python') ? 'python' : 'node');
const fixedKind = (kind) => () => kind;

/**
 * `needs`: what preflight must find for this stack (see run.mjs). `app`: which fixture
 * app it serves ("flask", "fastapi", or "static" for the bare ceiling).
 */
export const STACKS = {
  ng: { id: 'ng', label: 'nginx + gunicorn', short: 'nginx+gunicorn', app: 'flask', needs: ['nginx', 'gunicorn', 'flask'], start: (ctx) => startNginxGunicorn(ctx, { id: 'ng' }) },
  ngt: { id: 'ngt', label: 'nginx + gunicorn (gthread, 4 threads)', short: 'nginx+gunicorn gthread', app: 'flask', needs: ['nginx', 'gunicorn', 'flask'], start: (ctx) => startNginxGunicorn(ctx, { id: 'ngt', threads: 4 }) },
  ss: { id: 'ss', label: 'ServeStack (default dispatch)', short: 'ServeStack', app: 'flask', needs: ['flask', 'cli'], start: (ctx) => startServeStack(ctx, { id: 'ss' }) },
  ss0: { id: 'ss0', label: 'ServeStack (--prefetch 0, strict)', short: 'ServeStack strict', app: 'flask', needs: ['flask', 'cli'], start: (ctx) => startServeStack(ctx, { id: 'ss0', prefetch: 0 }) },
  sst: { id: 'sst', label: 'ServeStack (threads 4)', short: 'ServeStack threads', app: 'flask', needs: ['flask', 'cli'], start: (ctx) => startServeStack(ctx, { id: 'sst', threads: 4 }) },
  nu: { id: 'nu', label: 'nginx + uvicorn (uvloop, httptools)', short: 'nginx+uvicorn', app: 'fastapi', needs: ['nginx', 'uvicorn', 'fastapi'], start: startNginxUvicorn },
  ssa: { id: 'ssa', label: 'ServeStack (FastAPI, interface asgi)', short: 'ServeStack asgi', app: 'fastapi', needs: ['fastapi', 'cli'], start: (ctx) => startServeStack(ctx, { id: 'ssa', asgi: true }) },
  node: { id: 'node', label: 'bare node:http (1 KiB from memory)', short: 'bare node', app: 'static', needs: [], start: startBareNode },
};

/** Ports a stack needs: the front, plus the app server's behind nginx. */
export const portsFor = (id) => (id === 'ng' || id === 'ngt' || id === 'nu' ? 2 : 1);

/** A started stack: its URL, its process groups, and what they cost. */
class RunningStack {
  constructor(def, url, groups, notes) {
    this.def = def;
    this.url = url;
    this.groups = groups;
    this.notes = notes;
    this.memory = groups.map((g) => new MemoryTracker(g.pgid, g.kindOf));
  }
  get id() {
    return this.def.id;
  }
  cpuSeconds() {
    return this.groups.reduce((sum, g) => sum + groupCpuSeconds(g.pgid), 0);
  }
  /** CPU seconds so far by process kind. */
  cpuByKind() {
    const into = {};
    for (const g of this.groups) groupCpuByKind(g.pgid, g.kindOf, into);
    return into;
  }
  /** Samples memory; returns this sample's VmRSS (kB) by process kind. */
  sampleMemory(opts) {
    const byKind = {};
    for (const m of this.memory) for (const [k, kb] of Object.entries(m.sample(opts))) byKind[k] = (byKind[k] ?? 0) + kb;
    return byKind;
  }
  memorySummary() {
    const parts = this.memory.map((m) => m.summary());
    const sum = (k) => parts.reduce((s, p) => s + p[k], 0);
    const kinds = {};
    for (const p of parts) {
      for (const [kind, c] of Object.entries(p.kinds)) {
        const into = (kinds[kind] ??= { count: 0, hwmKb: 0, peakRssKb: 0, afterRssKb: 0, restRssKb: 0 });
        for (const f of Object.keys(into)) into[f] += c[f];
      }
    }
    // Groups peak at different moments; the sum of their peaks bounds the stack's peak from above.
    return { peakRssKb: sum('peakRssKb'), sumHwmKb: sum('sumHwmKb'), peakPssKb: sum('peakPssKb'), processes: sum('processes'), kinds };
  }
  died() {
    return this.groups.find((g) => g.exited);
  }
  async stop() {
    // The front first (no new requests), then the workers.
    for (const g of this.groups) await stopGroup(g, { signal: g.stopSignal ?? 'SIGTERM', graceMs: 15000 });
  }
}

/** nginx.conf for one stack: /static/ from disk, everything else to UPSTREAM_PORT. */
function writeNginxConf(ngx, { port, upstreamPort, app, nginxWorkers, upstreamNote }) {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(ngx, 'temp', sub), { recursive: true });
  const conf = path.join(ngx, 'nginx.conf');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    `# Generated by bench/run.mjs for one benchmark run.
daemon off;
master_process on;
worker_processes ${nginxWorkers};
${asRoot ? 'user root;  # workers must read the temp dir (mode 0700) the benchmark made\n' : ''}pid ${ngx}/nginx.pid;
error_log ${ngx}/error.log warn;

events {
  worker_connections 1024;
}

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  # Each request is logged, as ServeStack logs each one; buffered, to /dev/null like ServeStack's stdout here.
  access_log /dev/null combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  client_body_temp_path ${ngx}/temp/client_body;
  proxy_temp_path ${ngx}/temp/proxy;
  fastcgi_temp_path ${ngx}/temp/fastcgi;
  uwsgi_temp_path ${ngx}/temp/uwsgi;
  scgi_temp_path ${ngx}/temp/scgi;

  upstream app_server {
    server 127.0.0.1:${upstreamPort};
    keepalive 16;  # ${upstreamNote}
  }

  server {
    listen 127.0.0.1:${port};
    server_name localhost;

    location /static/ {
      root ${app};
    }

    location / {
      proxy_pass http://app_server;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`,
  );
  return conf;
}

function startNginx(ngx, conf) {
  const nginx = startGroup('nginx', NGINX, ['-p', ngx, '-c', conf, '-e', path.join(ngx, 'error.log')], { cwd: ngx, stdout: path.join(ngx, 'nginx.out'), stderr: path.join(ngx, 'nginx.out') });
  nginx.stopSignal = 'SIGQUIT'; // graceful: finish what is in flight
  nginx.kindOf = fixedKind('nginx');
  return nginx;
}

/** threads: gunicorn's gthread worker class with that many threads a worker; else its sync workers. */
async function startNginxGunicorn({ tmp, fixturesDir, ports, nginxWorkers }, { id, threads }) {
  const dir = path.join(tmp, id);
  const app = path.join(dir, 'app');
  writeAppDir(app, fixturesDir);
  const ngx = path.join(dir, 'nginx');
  const [port, upstreamPort] = ports;
  const conf = writeNginxConf(ngx, {
    port,
    upstreamPort,
    app,
    nginxWorkers,
    upstreamNote: threads ? 'gthread workers keep connections open, so nginx reuses them' : "offered; gunicorn's sync workers close after each response anyway",
  });
  const workerClass = threads ? ['--worker-class', 'gthread', '--threads', String(threads)] : ['--worker-class', 'sync'];
  const gunicorn = startGroup(
    'gunicorn',
    GUNICORN,
    ['--workers', '2', ...workerClass, '--bind', `127.0.0.1:${upstreamPort}`, '--chdir', app, '--log-level', 'warning', '--error-logfile', path.join(dir, 'gunicorn.log'), 'app:app'],
    { cwd: app, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, stdout: path.join(dir, 'gunicorn.out'), stderr: path.join(dir, 'gunicorn.out') },
  );
  gunicorn.stopSignal = 'SIGTERM';
  gunicorn.kindOf = fixedKind('gunicorn');
  const nginx = startNginx(ngx, conf);
  const stack = new RunningStack(STACKS[id], `http://127.0.0.1:${port}`, [nginx, gunicorn], {
    config: conf,
    logs: [path.join(dir, 'gunicorn.log'), path.join(ngx, 'error.log')],
  });
  try {
    await waitForHttp(`http://127.0.0.1:${upstreamPort}/`, gunicorn, { timeoutMs: 30000 });
    await waitForHttp(`${stack.url}/`, nginx, { timeoutMs: 15000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

async function startNginxUvicorn({ tmp, fixturesDir, ports, nginxWorkers }) {
  const dir = path.join(tmp, 'nu');
  const app = path.join(dir, 'app');
  writeAppDir(app, fixturesDir);
  const ngx = path.join(dir, 'nginx');
  const [port, upstreamPort] = ports;
  const conf = writeNginxConf(ngx, { port, upstreamPort, app, nginxWorkers, upstreamNote: 'uvicorn keeps connections open, so nginx reuses them' });
  // What `uvicorn[standard]` users run: uvloop's event loop and httptools' parser, named
  // explicitly so a missing one fails here instead of silently falling back to asyncio/h11.
  const uvicorn = startGroup(
    'uvicorn',
    PYTHON,
    ['-m', 'uvicorn', '--workers', '2', '--loop', 'uvloop', '--http', 'httptools', '--host', '127.0.0.1', '--port', String(upstreamPort), '--app-dir', app, '--no-access-log', '--log-level', 'warning', 'fastapi_app:app'],
    { cwd: app, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, stdout: path.join(dir, 'uvicorn.log'), stderr: path.join(dir, 'uvicorn.log') },
  );
  uvicorn.stopSignal = 'SIGTERM';
  uvicorn.kindOf = fixedKind('uvicorn');
  const nginx = startNginx(ngx, conf);
  const stack = new RunningStack(STACKS.nu, `http://127.0.0.1:${port}`, [nginx, uvicorn], {
    config: conf,
    logs: [path.join(dir, 'uvicorn.log'), path.join(ngx, 'error.log')],
  });
  try {
    await waitForHttp(`http://127.0.0.1:${upstreamPort}/`, uvicorn, { timeoutMs: 30000 });
    await waitForHttp(`${stack.url}/`, nginx, { timeoutMs: 15000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

async function startBareNode({ tmp, fixturesDir, ports, repo }) {
  const dir = path.join(tmp, 'node');
  const app = path.join(dir, 'app');
  writeAppDir(app, fixturesDir);
  const [port] = ports;
  // The ServeStack front's V8 flags and malloc setting: the ceiling is the same Node, run the same way.
  const launch = serverNodeLaunch(repo);
  const group = startGroup('bare node', process.execPath, [...launch.nodeFlags, path.join(fixturesDir, 'static-ceiling.mjs'), String(port), path.join(app, STATIC_FILE)], {
    env: { ...process.env, ...launch.env },
    cwd: dir,
    stdout: path.join(dir, 'node.log'),
    stderr: path.join(dir, 'node.log'),
  });
  group.kindOf = fixedKind('node');
  const stack = new RunningStack(STACKS.node, `http://127.0.0.1:${port}`, [group], { config: path.join(fixturesDir, 'static-ceiling.mjs'), logs: [path.join(dir, 'node.log')] });
  try {
    await waitForHttp(`${stack.url}/${STATIC_FILE}`, group, { timeoutMs: 15000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

/**
 * The V8 flags and malloc setting the CLI's first line and the extension give the server
 * (server/nodeLaunch.json; the server is also told what each variable was, as
 * server/launch.ts does).
 */
function serverNodeLaunch(repo) {
  return JSON.parse(readFileSync(path.join(repo, 'server', 'nodeLaunch.json'), 'utf8'));
}

/**
 * Writes DIR/app (the fixture apps + servestack.json) and returns how to start
 * `servestack serve` on it: the Flask app, or with ASGI the FastAPI app, 2 workers.
 * Also used by the cold-start measure, so both start the same way.
 */
export function serveStackCommand({ dir, fixturesDir, port, cli, prefetch, asgi = false, threads = 1 }) {
  const app = path.join(dir, 'app');
  writeAppDir(app, fixturesDir);
  const pool = asgi ? '"app": "fastapi_app:app", "interface": "asgi"' : '"app": "app:app"';
  writeFileSync(
    path.join(app, 'servestack.json'),
    `// Generated by bench/run.mjs for one benchmark run.
{
  "listen": "127.0.0.1:${port}",
  "pools": {
    "web": { ${pool}, "workers": 2, "threads": ${threads}, "timeout": "30s" }
  },
  "routes": [
    { "path": "/static/", "static": "static" },
    { "path": "/", "pool": "web" }
  ]
}
`,
  );
  const launch = serverNodeLaunch(path.resolve(path.dirname(cli), '..'));
  const launchEnv = { ...launch.env, ...Object.fromEntries(Object.keys(launch.env).map((name) => [`SERVESTACK_WAS_${name}`, process.env[name] ?? ''])) };
  const args = [...launch.nodeFlags, cli, 'serve', app, '--port', String(port), '--python', PYTHON, '--workers', '2'];
  if (prefetch !== undefined) args.push('--prefetch', String(prefetch));
  mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 });
  return {
    cmd: process.execPath,
    args,
    app,
    // The state file goes to $XDG_RUNTIME_DIR/servestack: keep it inside the temp dir.
    env: { ...process.env, ...launchEnv, XDG_RUNTIME_DIR: path.join(dir, 'run'), PYTHONDONTWRITEBYTECODE: '1' },
  };
}

async function startServeStack({ tmp, fixturesDir, ports, cli, repo, cpuProf }, { id, prefetch, asgi, threads }) {
  const dir = path.join(tmp, id);
  const [port] = ports;
  const run = serveStackCommand({ dir, fixturesDir, port, cli, prefetch, asgi, threads });
  // --cpu-prof: Node writes the profile when the server exits (it does on SIGTERM).
  const cpuProfDir = cpuProf ? path.join(dir, 'cpu-prof') : undefined;
  const args = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, ...run.args] : run.args;
  const group = startGroup(STACKS[id].short, run.cmd, args, {
    cwd: repo,
    env: run.env,
    stdout: '/dev/null', // the access log: one line per request
    stderr: path.join(dir, 'servestack.err'),
  });
  group.kindOf = serveStackKind;
  const stack = new RunningStack(STACKS[id], `http://127.0.0.1:${port}`, [group], {
    config: path.join(run.app, 'servestack.json'),
    logs: [path.join(dir, 'servestack.err')],
    cpuProfDir,
  });
  try {
    await waitForHttp(`${stack.url}/`, group, { timeoutMs: 30000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}
