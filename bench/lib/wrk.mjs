// Runs wrk once and returns its figures. wrk runs under `bash -c '…; times'` so its own
// CPU time is known too (it shares the 2 cores with the stack it measures). The Lua
// script is always report.lua (exact counts and microsecond percentiles) plus the
// scenario's own script, if any.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGroup, stopGroup } from './procs.mjs';

export const WRK = '/usr/bin/wrk';

/** Writes DIR/NAME.lua = report.lua + the scenario's script; returns its path. */
export function writeWrkScript(dir, name, fixturesDir, scenarioLua) {
  const parts = [readFileSync(path.join(fixturesDir, 'report.lua'), 'utf8')];
  if (scenarioLua) parts.push(readFileSync(path.join(fixturesDir, scenarioLua), 'utf8'));
  const file = path.join(dir, `${name}.lua`);
  writeFileSync(file, parts.join('\n'));
  return file;
}

function parseBash_times(text) {
  // `times` prints the shell's own times, then its children's: "0m1.234s 0m0.567s".
  const lines = text.trim().split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
  const last = lines.at(-1);
  if (!last) return undefined;
  return last
    .trim()
    .split(' ')
    .map((t) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(t);
      return Number(m[1]) * 60 + Number(m[2]);
    })
    .reduce((a, b) => a + b, 0);
}

/**
 * One wrk run. Returns { requests, seconds, rps, p50Ms, p90Ms, p99Ms, maxMs, errors,
 * kinds?, wrkCpuS, raw }. Throws when wrk fails or prints no result line.
 */
export async function runWrk({ url, threads, connections, durationS, timeoutS = 5, script, args = [], cwd }) {
  const wrkArgs = ['-t', String(threads), '-c', String(connections), '-d', `${durationS}s`, '--latency', '--timeout', `${timeoutS}s`, '-s', script, url];
  if (args.length) wrkArgs.push('--', ...args);
  const group = startGroup('wrk', '/bin/bash', ['-c', '"$0" "$@"; rc=$?; times; exit $rc', WRK, ...wrkArgs], { cwd, stdout: 'pipe' });
  let out = '';
  group.child.stdout.setEncoding('utf8');
  group.child.stdout.on('data', (d) => (out += d));
  const overrun = setTimeout(() => void stopGroup(group, { signal: 'SIGKILL', graceMs: 1000 }), (durationS + timeoutS + 15) * 1000);
  await group.exitPromise;
  clearTimeout(overrun);
  await new Promise((resolve) => (group.child.stdout.readableEnded ? resolve() : group.child.stdout.once('end', resolve)));
  await stopGroup(group, { graceMs: 1000 });
  const line = /^BENCH_WRK (.*)$/m.exec(out);
  if (group.exitCode !== 0 || !line) {
    throw new Error(`wrk ${wrkArgs.join(' ')} failed (exit ${group.exitCode}, signal ${group.signal}):\n${out}`);
  }
  const r = JSON.parse(line[1]);
  const kinds = /^BENCH_KINDS (.*)$/m.exec(out);
  const seconds = r.duration_us / 1e6;
  return {
    requests: r.requests,
    seconds,
    rps: r.requests / seconds,
    p50Ms: r.p50_us / 1000,
    p90Ms: r.p90_us / 1000,
    p99Ms: r.p99_us / 1000,
    maxMs: r.max_us / 1000,
    errors: { connect: r.connect, read: r.read, write: r.write, status: r.status, timeout: r.timeout },
    errorCount: r.connect + r.read + r.write + r.status + r.timeout,
    kinds: kinds ? JSON.parse(kinds[1]) : undefined,
    wrkCpuS: parseBash_times(out),
    raw: out,
  };
}
