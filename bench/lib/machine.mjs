// The facts that make a result comparable: the machine and every version involved.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

function run(cmd, args, { cwd } = {}) {
  try {
    const r = execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return r.trim();
  } catch (error) {
    // nginx -v prints to stderr and exits 0; others may print there too
    const text = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim();
    return text || `unknown (${error.message.split('\n')[0]})`;
  }
}

/** Both streams: `nginx -v` and `python --version` (old ones) print to stderr. */
function runBoth(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return `unknown (${r.error.message})`;
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

function cpuModel() {
  const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m ? m[1].trim() : os.cpus()[0]?.model ?? 'unknown';
}

function memTotal() {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? `${(Number(m[1]) / 1024 / 1024).toFixed(1)} GiB` : `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`;
}

function osName() {
  try {
    return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** A Python distribution's version as installed for PYTHON, or "not installed". */
function pyVersion(python, dist) {
  const r = spawnSync(python, ['-c', `import importlib.metadata as m; print(m.version(${JSON.stringify(dist)}))`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not installed';
}

export function machineFacts({ repo, python, nginx, gunicorn, wrk }) {
  const sysctl = (k) => {
    try {
      return readFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, 'utf8').trim().replace(/\s+/g, ' ');
    } catch {
      return '?';
    }
  };
  return {
    date: new Date().toISOString(),
    nproc: run('nproc', []),
    cpu: cpuModel(),
    memory: memTotal(),
    os: osName(),
    kernel: os.release(),
    node: process.version,
    python: runBoth(python, ['--version']),
    flask: pyVersion(python, 'flask'),
    fastapi: pyVersion(python, 'fastapi'),
    uvicorn: pyVersion(python, 'uvicorn'),
    uvloop: pyVersion(python, 'uvloop'),
    httptools: pyVersion(python, 'httptools'),
    nginx: runBoth(nginx, ['-v']).replace(/^nginx version: /, ''),
    gunicorn: runBoth(gunicorn, ['--version']),
    wrk: runBoth(wrk, ['-v']).split('\n')[0].replace(/ Copyright.*/, ''),
    servestack: run('git', ['describe', '--always', '--dirty', '--abbrev=10'], { cwd: repo }),
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    sysctl: { tcp_tw_reuse: sysctl('net.ipv4.tcp_tw_reuse'), somaxconn: sysctl('net.core.somaxconn'), ip_local_port_range: sysctl('net.ipv4.ip_local_port_range') },
  };
}
