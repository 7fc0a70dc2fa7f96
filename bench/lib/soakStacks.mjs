// The two stacks the soak runs, one at a time, and the faults it injects into each:
//   servestack  `node dist/cli.js serve` of the soak app, a pool of 2 workers with a timeout
//   nginx       nginx (temp prefix) → gunicorn, 2 sync workers, the same timeout
// Every action targets only processes this run started: worker pids are read from /proc
// as children of the group leader the soak spawned, and checked again just before the signal.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { groupPids, readStat, sleep, startGroup, stopGroup, waitForHttp } from './procs.mjs';
import { MemoryTracker } from './procStats.mjs';
import { GUNICORN, NGINX, PYTHON } from './stacks.mjs';

/** The body limit of the /upload route before and during a config edit (MiB). */
export const BODY_LIMIT_MIB = { normal: 1, edited: 2 };

/** Field 22 of /proc/PID/stat (start time in clock ticks): tells a pid from a later process that reuses it. */
function startTime(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** Pids whose parent is PPID, with their CPU ticks so far. */
function childrenOf(ppid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.ppid === ppid && stat.state !== 'Z') out.push({ pid: stat.pid, comm: stat.comm, ticks: stat.utime + stat.stime });
  }
  return out;
}

function run(cmd, args, { env, cwd, timeoutMs = 30000 } = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    execFile(cmd, args, { env, cwd, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, out: `${stdout}${stderr}`.trim(), ms: performance.now() - started });
    });
  });
}

function countMatches(file, re) {
  try {
    return (readFileSync(file, 'utf8').match(re) ?? []).length;
  } catch {
    return 0;
  }
}

/** What both stacks share: process groups, the tree of pids seen, worker choice, the leftover check. */
class SoakStack {
  constructor({ id, label, url, groups, app, logs, workerParent }) {
    Object.assign(this, { id, label, url, groups, app, logs });
    this.workerParent = workerParent; // the pid whose children are the workers
    /** every pid this stack's groups ever had, with its start time: the leftover check looks them all up */
    this.seen = new Map();
    /** every worker pid seen (replacements included) */
    this.workerPidsSeen = new Set();
    this.memory = groups.map((g) => new MemoryTracker(g.pgid));
    this.track();
  }

  /** Records the pids now in this stack's process groups (called once a second and around faults). */
  track() {
    for (const g of this.groups) {
      for (const pid of groupPids(g.pgid)) if (!this.seen.has(pid)) this.seen.set(pid, startTime(pid));
    }
    for (const w of this.workers()) this.workerPidsSeen.add(w.pid);
    for (const m of this.memory) m.sample();
  }

  workers() {
    return childrenOf(this.workerParent);
  }

  /** The worker that used the most CPU over the next `windowMs`: most likely one in the middle of a request. */
  async busiestWorker(windowMs = 300) {
    const before = new Map(this.workers().map((w) => [w.pid, w.ticks]));
    await sleep(windowMs);
    const now = this.workers().filter((w) => before.has(w.pid));
    now.sort((a, b) => b.ticks - before.get(b.pid) - (a.ticks - before.get(a.pid)));
    return now[0];
  }

  async killWorker() {
    const w = await this.busiestWorker();
    if (!w) return { ok: false, detail: 'no worker to kill' };
    // Only a child of the leader this run started, and still the same process.
    const stat = readStat(w.pid);
    if (!stat || stat.ppid !== this.workerParent) return { ok: false, detail: `worker ${w.pid} went away before the kill` };
    this.track();
    process.kill(w.pid, 'SIGKILL');
    return { ok: true, detail: `SIGKILL to worker pid ${w.pid}` };
  }

  alive() {
    return this.groups.every((g) => !g.exited);
  }

  died() {
    return this.groups.find((g) => g.exited);
  }

  memoryPeakKb() {
    return this.memory.reduce((s, m) => s + m.summary().peakRssKb, 0);
  }

  async stop() {
    this.track();
    for (const g of this.groups) await stopGroup(g, { signal: g.stopSignal ?? 'SIGTERM', graceMs: 15000 });
  }

  /** Pids this stack had that still run (same pid and start time), after stop(). */
  leftovers() {
    const left = [];
    for (const [pid, started] of this.seen) {
      const now = startTime(pid);
      if (now !== undefined && now === started) left.push({ pid, comm: readStat(pid)?.comm ?? '?' });
    }
    return left;
  }
}

// ── ServeStack ─────────────────────────────────────────────────────────────────

function serveStackConfig(port, timeoutS, bodyLimitMib) {
  return `// Generated by bench/soak.mjs for one soak run.
{
  "listen": "127.0.0.1:${port}",
  "pools": {
    "web": { "app": "app:app", "workers": 2, "threads": 1, "timeout": "${timeoutS}s" }
  },
  "routes": [
    { "path": "/upload", "pool": "web", "maxBodySize": "${bodyLimitMib}m" },
    { "path": "/", "pool": "web" }
  ]
}
`;
}

class ServeStackSoak extends SoakStack {
  constructor(opts, { cli, env, port, timeoutS }) {
    super(opts);
    Object.assign(this, { cli, env, port, timeoutS });
    this.configFile = path.join(this.app, 'servestack.json');
  }

  verb(args) {
    return run(process.execPath, [this.cli, ...args, '--dir', this.app], { env: this.env });
  }

  async reload() {
    const r = await this.verb(['reload']);
    return { ok: r.code === 0, detail: `servestack reload: ${r.out || `exit ${r.code}`}` };
  }

  async scale(n) {
    const r = await this.verb(['scale', String(n)]);
    return { ok: r.code === 0, detail: `servestack scale ${n}: ${r.out || `exit ${r.code}`}` };
  }

  async setBodyLimit(mib) {
    writeFileSync(this.configFile, serveStackConfig(this.port, this.timeoutS, mib));
    return { ok: true, detail: `servestack.json: /upload maxBodySize ${mib}m` };
  }

  async breakConfig() {
    // A syntax error and a wrong type: the running config must keep serving.
    writeFileSync(this.configFile, serveStackConfig(this.port, this.timeoutS, BODY_LIMIT_MIB.normal).replace('"workers": 2', '"workers": "two",').replace(/\n}\n$/, '\n'));
    return { ok: true, detail: 'servestack.json: broken (unclosed object, "workers": "two")' };
  }

  /** How many times the log says a new config was refused and the running one kept. */
  configRefusals() {
    return countMatches(this.logs.server, /the new config has errors; the running config keeps serving/g);
  }

  /** Worker kills the server did on its own: past the pool timeout, or no heartbeat. */
  timeoutKills() {
    return countMatches(this.logs.server, /past the pool's timeout|sent no heartbeat/g);
  }
}

async function startServeStack({ tmp, fixturesDir, ports: [port], cli, repo, timeoutS }) {
  const dir = path.join(tmp, 'servestack');
  const app = path.join(dir, 'app');
  mkdirSync(app, { recursive: true });
  copyFileSync(path.join(fixturesDir, 'soak_app.py'), path.join(app, 'app.py'));
  writeFileSync(path.join(app, 'servestack.json'), serveStackConfig(port, timeoutS, BODY_LIMIT_MIB.normal));
  mkdirSync(path.join(dir, 'run'), { recursive: true, mode: 0o700 });
  // The state file goes to $XDG_RUNTIME_DIR/servestack: inside the temp dir, where the CLI verbs look too.
  const env = { ...process.env, XDG_RUNTIME_DIR: path.join(dir, 'run'), PYTHONDONTWRITEBYTECODE: '1' };
  const logs = { server: path.join(dir, 'servestack.log'), stderr: path.join(dir, 'servestack.err') };
  const group = startGroup('servestack', process.execPath, [cli, 'serve', app, '--python', PYTHON], { cwd: repo, env, stdout: logs.server, stderr: logs.stderr });
  const stack = new ServeStackSoak(
    { id: 'servestack', label: 'ServeStack', url: `http://127.0.0.1:${port}`, groups: [group], app, logs, workerParent: group.pgid },
    { cli, env, port, timeoutS },
  );
  try {
    await waitForHttp(`${stack.url}/hello`, group, { timeoutMs: 30000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

// ── nginx → gunicorn ───────────────────────────────────────────────────────────

function nginxConfig({ ngx, port, upstreamPort, bodyLimitMib, http10, broken = false }) {
  const asRoot = process.getuid?.() === 0;
  // HTTP/1.1 to gunicorn, as bench/lib/stacks.mjs and production configs do: gunicorn then frames an
  // answer without Content-Length as chunked, so nginx can tell a worker that died mid-answer from
  // the end of it. nginx's default (1.0) gets such answers close-delimited: --nginx-http10.
  const upstreamHttp = http10 ? '' : '      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n';
  return `# Generated by bench/soak.mjs for one soak run.
daemon off;
master_process on;
worker_processes 1;
${asRoot ? 'user root;  # workers must read the temp dir (mode 0700) the soak made\n' : ''}pid ${ngx}/nginx.pid;
error_log ${ngx}/error.log warn;

events {
  worker_connections 1024;
}

http {
  default_type application/octet-stream;
  access_log ${ngx}/access.log combined buffer=64k flush=1s;
  client_body_temp_path ${ngx}/temp/client_body;
  proxy_temp_path ${ngx}/temp/proxy;
  fastcgi_temp_path ${ngx}/temp/fastcgi;
  uwsgi_temp_path ${ngx}/temp/uwsgi;
  scgi_temp_path ${ngx}/temp/scgi;
  # nginx defaults, spelled out: responses and request bodies are buffered (memory, then temp files).
  proxy_buffering on;
  proxy_request_buffering on;
${broken ? '  this_directive_does_not_exist on\n' : ''}
  upstream gunicorn {
    server 127.0.0.1:${upstreamPort};
  }

  server {
    listen 127.0.0.1:${port};
    server_name localhost;

    location /upload {
      client_max_body_size ${bodyLimitMib}m;
      proxy_pass http://gunicorn;
${upstreamHttp}      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }

    location / {
      proxy_pass http://gunicorn;
${upstreamHttp}      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
}

class NginxGunicornSoak extends SoakStack {
  constructor(opts, { nginx, gunicorn, ngx, conf, confOptions }) {
    super(opts);
    Object.assign(this, { nginx, gunicorn, ngx, conf, confOptions });
  }

  signalMaster(group, signal) {
    if (group.exited) return false;
    process.kill(group.pgid, signal); // the leader this run spawned
    return true;
  }

  async reload() {
    return { ok: this.signalMaster(this.gunicorn, 'SIGHUP'), detail: `SIGHUP to the gunicorn master (pid ${this.gunicorn.pgid})` };
  }

  async scale(n) {
    const have = this.workers().length;
    const signal = n > have ? 'SIGTTIN' : 'SIGTTOU';
    for (let i = 0; i < Math.abs(n - have); i++) {
      this.signalMaster(this.gunicorn, signal);
      await sleep(100); // gunicorn handles one queued signal per loop turn
    }
    return { ok: true, detail: `${Math.abs(n - have)} × ${signal} to the gunicorn master (${have} → ${n} workers)` };
  }

  async nginxReload() {
    const r = await run(NGINX, ['-p', this.ngx, '-c', this.conf, '-e', path.join(this.ngx, 'error.log'), '-s', 'reload']);
    return r;
  }

  async setBodyLimit(mib) {
    writeFileSync(this.conf, nginxConfig({ ...this.confOptions, bodyLimitMib: mib }));
    const r = await this.nginxReload();
    return { ok: r.code === 0, detail: `nginx.conf: /upload client_max_body_size ${mib}m; nginx -s reload${r.code ? `: ${r.out}` : ''}` };
  }

  async breakConfig() {
    writeFileSync(this.conf, nginxConfig({ ...this.confOptions, bodyLimitMib: BODY_LIMIT_MIB.normal, broken: true }));
    // `nginx -s reload` checks the file first and refuses to signal; HUP makes the running master read it.
    const check = await this.nginxReload();
    const sent = this.signalMaster(this.nginx, 'SIGHUP');
    return { ok: sent, detail: `nginx.conf: unknown directive; nginx -s reload exit ${check.code}, then SIGHUP to the nginx master` };
  }

  /** nginx logs an [emerg] for a config its master refuses on HUP, and keeps the old one. */
  configRefusals() {
    return countMatches(this.logs.nginx, /\[emerg\]/g);
  }

  timeoutKills() {
    return countMatches(this.logs.gunicorn, /WORKER TIMEOUT/g);
  }
}

async function startNginxGunicorn({ tmp, fixturesDir, ports: [port, upstreamPort], timeoutS, nginxHttp10 }) {
  const dir = path.join(tmp, 'nginx');
  const app = path.join(dir, 'app');
  mkdirSync(app, { recursive: true });
  copyFileSync(path.join(fixturesDir, 'soak_app.py'), path.join(app, 'app.py'));
  const ngx = path.join(dir, 'nginx');
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(ngx, 'temp', sub), { recursive: true });
  const conf = path.join(ngx, 'nginx.conf');
  const confOptions = { ngx, port, upstreamPort, http10: nginxHttp10 };
  writeFileSync(conf, nginxConfig({ ...confOptions, bodyLimitMib: BODY_LIMIT_MIB.normal }));
  const logs = { gunicorn: path.join(dir, 'gunicorn.log'), nginx: path.join(ngx, 'error.log') };
  const gunicorn = startGroup(
    'gunicorn',
    GUNICORN,
    ['--workers', '2', '--worker-class', 'sync', '--timeout', String(timeoutS), '--graceful-timeout', String(timeoutS), '--bind', `127.0.0.1:${upstreamPort}`, '--chdir', app, '--log-level', 'info', '--error-logfile', logs.gunicorn, 'app:app'],
    { cwd: app, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, stdout: path.join(dir, 'gunicorn.out'), stderr: path.join(dir, 'gunicorn.out') },
  );
  gunicorn.stopSignal = 'SIGTERM';
  const nginx = startGroup('nginx', NGINX, ['-p', ngx, '-c', conf, '-e', logs.nginx], { cwd: ngx, stdout: path.join(ngx, 'nginx.out'), stderr: path.join(ngx, 'nginx.out') });
  nginx.stopSignal = 'SIGQUIT';
  const stack = new NginxGunicornSoak(
    { id: 'nginx', label: nginxHttp10 ? 'nginx (HTTP/1.0 upstream) → gunicorn' : 'nginx → gunicorn', url: `http://127.0.0.1:${port}`, groups: [nginx, gunicorn], app, logs, workerParent: gunicorn.pgid },
    { nginx, gunicorn, ngx, conf, confOptions },
  );
  try {
    await waitForHttp(`http://127.0.0.1:${upstreamPort}/hello`, gunicorn, { timeoutMs: 30000 });
    await waitForHttp(`${stack.url}/hello`, nginx, { timeoutMs: 15000 });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

export const SOAK_STACKS = {
  servestack: { id: 'servestack', label: 'ServeStack', ports: 1, start: startServeStack },
  nginx: { id: 'nginx', label: 'nginx → gunicorn', ports: 2, start: startNginxGunicorn },
};
