// A/B of servers that are already running on loopback ports: wrk against each in turn,
// round after round, so a drift of the VM (a neighbour, a frequency change) falls on all
// of them alike; per server, the median of its rounds for req/s, p99 and the CPU time the
// listening process spent per request (utime+stime from /proc, its child processes
// separately). Made for comparing two builds, or a build against a bare node:http server,
// when a difference of 1–3 µs a request is smaller than the run-to-run noise of req/s:
//
//   node bench/ab.mjs --path /static/1k.txt --rounds 5 --duration 4 main=18360 new=18361 bare=18330
//
// It starts and stops nothing but wrk: start the servers yourself, e.g. a build's front with
// `node --max-semi-space-size=4 dist/cli.js serve DIR --port 18360 --workers 2` (the flags
// of server/nodeLaunch.json, as the bench runs it) and the bare ceiling with
// `node bench/fixtures/static-ceiling.mjs 18330 DIR/static/1k.txt`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { treeStats } from './lib/procs.mjs';
import { CLK_TCK } from './lib/procStats.mjs';
import { median } from './lib/stats.mjs';
import { runWrk, writeWrkScript } from './lib/wrk.mjs';

const USAGE = `usage: node bench/ab.mjs [options] NAME=PORT ...

  --path P        request path (default /)
  --rounds N      rounds; each runs wrk once against every server, in the order given (default 5)
  --duration S    seconds per wrk run (default 4)
  --connections C (default 64)
  --threads T     wrk threads (default 2)

Servers must listen on 127.0.0.1; the listening process is found with ss(8) (Linux).`;

function parseArgs(argv) {
  const opts = { path: '/', rounds: 5, duration: 4, connections: 64, threads: 2, servers: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') return undefined;
    else if (a === '--path') opts.path = value();
    else if (a === '--rounds') opts.rounds = positive(a, value());
    else if (a === '--duration') opts.duration = positive(a, value());
    else if (a === '--connections') opts.connections = positive(a, value());
    else if (a === '--threads') opts.threads = positive(a, value());
    else if (/^[\w.-]+=\d+$/.test(a)) {
      const [name, port] = a.split('=');
      opts.servers.push({ name, port: Number(port) });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (opts.servers.length === 0) throw new Error('name at least one server as NAME=PORT');
  if (!opts.path.startsWith('/')) throw new Error('--path must start with "/"');
  return opts;
}

function positive(flag, text) {
  const n = Number(text);
  if (!(n > 0) || !Number.isInteger(n)) throw new Error(`${flag} takes a whole number above 0, not ${text}`);
  return n;
}

/** The pid listening on 127.0.0.1:PORT, from ss(8). */
function listenerPid(port) {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  if (!m) throw new Error(`nothing listens on port ${port} (or ss cannot see its process: run as its user)`);
  return Number(m[1]);
}

/** CPU seconds of PID itself and of its descendants now alive (a pool's workers). */
function cpuSeconds(pid) {
  const [own, ...below] = treeStats(pid);
  if (!own) throw new Error(`process ${pid} is gone`);
  let descendants = 0;
  for (const st of below) descendants += st.utime + st.stime;
  return { own: (own.utime + own.stime) / CLK_TCK, descendants: descendants / CLK_TCK };
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench/ab: ${error.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (!opts) return void process.stdout.write(`${USAGE}\n`);
  const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'servestack-ab-'));
  try {
    const script = writeWrkScript(tmp, 'ab', fixturesDir, undefined);
    const figures = new Map(opts.servers.map((s) => [s.name, { rps: [], p99: [], ownUs: [], childUs: [], wrkUs: [] }]));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const server of opts.servers) {
        const pid = listenerPid(server.port);
        const before = cpuSeconds(pid);
        const r = await runWrk({ url: `http://127.0.0.1:${server.port}${opts.path}`, threads: opts.threads, connections: opts.connections, durationS: opts.duration, script, cwd: tmp });
        const after = cpuSeconds(pid);
        if (r.errorCount > 0) process.stderr.write(`bench/ab: ${server.name} round ${round}: ${r.errorCount} errors ${JSON.stringify(r.errors)}\n`);
        const f = figures.get(server.name);
        f.rps.push(r.rps);
        f.p99.push(r.p99Ms);
        f.ownUs.push(((after.own - before.own) * 1e6) / r.requests);
        f.childUs.push(((after.descendants - before.descendants) * 1e6) / r.requests);
        f.wrkUs.push(((r.wrkCpuS ?? NaN) * 1e6) / r.requests);
        process.stdout.write(`round ${round} ${server.name.padEnd(10)} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${r.p99Ms.toFixed(2)} ms  cpu µs/req ${f.ownUs.at(-1).toFixed(1)} (+${f.childUs.at(-1).toFixed(1)} children)  wrk ${f.wrkUs.at(-1).toFixed(1)}\n`);
      }
    }
    process.stdout.write(`\nmedians of ${opts.rounds} rounds × ${opts.duration} s, c=${opts.connections}, ${opts.path}:\n`);
    const first = median(figures.get(opts.servers[0].name).rps);
    for (const server of opts.servers) {
      const f = figures.get(server.name);
      const rps = median(f.rps);
      process.stdout.write(`${server.name.padEnd(10)} ${rps.toFixed(0).padStart(7)} req/s (${(rps / first).toFixed(2)}× ${opts.servers[0].name})  p99 ${median(f.p99).toFixed(2)} ms  cpu µs/req ${median(f.ownUs).toFixed(1)} +${median(f.childUs).toFixed(1)} children  wrk ${median(f.wrkUs).toFixed(1)}\n`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench/ab: ${error.message}\n`);
  process.exit(1);
});
