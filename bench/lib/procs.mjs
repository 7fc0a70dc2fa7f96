// Processes the benchmark starts: each in its own process group (spawn detached =
// setsid), so a stack's forked workers (nginx, gunicorn, ServeStack's Python workers)
// are stopped with it, and nothing else on the machine is ever signalled. Also: free
// ports, waiting for an HTTP answer, and the last-resort cleanup on exit or interrupt.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** @typedef {{ name: string, child: import('node:child_process').ChildProcess, pgid: number, exited: boolean, exitCode: number|null, signal: string|null, error?: Error, exitPromise: Promise<void> }} Group */

/** @type {Set<Group>} every group this run started and has not yet seen empty */
const groups = new Set();

/**
 * Starts CMD in a new process group. stdout/stderr go to files (or /dev/null), never
 * to a pipe: a pipe would make this process read every access-log line on the cores
 * the benchmark measures. `stdout: 'pipe'` is for wrk, whose output is small.
 */
export function startGroup(name, cmd, args, { cwd, env, stdout = '/dev/null', stderr = '/dev/null' } = {}) {
  const outFd = stdout === 'pipe' ? 'pipe' : openSync(stdout, 'a');
  const errFd = openSync(stderr, 'a');
  let child;
  try {
    child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', outFd, errFd] });
  } finally {
    if (typeof outFd === 'number') closeSync(outFd);
    closeSync(errFd);
  }
  /** @type {Group} */
  const group = { name, child, pgid: child.pid ?? -1, exited: false, exitCode: null, signal: null, exitPromise: Promise.resolve() };
  group.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      group.exited = true;
      group.exitCode = code;
      group.signal = signal;
      resolve();
    });
    child.on('error', (error) => {
      group.exited = true;
      group.error = error;
      resolve();
    });
  });
  if (child.pid !== undefined) groups.add(group);
  return group;
}

/** The pids whose process group is PGID (the leader and everything it forked that stayed). */
export function groupPids(pgid) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid) pids.push(stat.pid);
  }
  return pids;
}

/**
 * The /proc stat of every process in group PGID, found by walking the leader's
 * descendants: it reads only our own processes' entries, where a scan of /proc reads
 * every process on the machine (tens of ms on a busy one, many times a second, on the
 * cores being measured). When the leader is gone its orphans are no longer its
 * descendants, so then it scans /proc like groupPids.
 */
export function groupStats(pgid) {
  const leader = readStat(pgid);
  if (!leader || leader.pgrp !== pgid) return groupPids(pgid).map(readStat).filter(Boolean);
  return statsBelow(leader).filter((st) => st.pgrp === pgid);
}

/** The /proc stat of PID and then of every process below it now alive (empty when PID is gone). */
export function treeStats(pid) {
  const root = readStat(pid);
  return root ? statsBelow(root) : [];
}

function statsBelow(root) {
  const out = [];
  const todo = [root];
  const seen = new Set();
  while (todo.length) {
    const st = todo.pop();
    if (seen.has(st.pid)) continue;
    seen.add(st.pid);
    out.push(st);
    for (const child of childrenOf(st.pid)) {
      const cs = readStat(child);
      if (cs) todo.push(cs);
    }
  }
  return out;
}

/** Children of PID, from every one of its threads (a child belongs to the thread that forked it). */
function childrenOf(pid) {
  const kids = [];
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return kids; // exited
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) kids.push(Number(c));
    } catch {
      // the thread or the process ended meanwhile
    }
  }
  return kids;
}

/** Fields of /proc/PID/stat we use; undefined when the process is gone. */
export function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between readdir and read
  }
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' '); // rest[k] is field k+3 of proc(5)
  return { pid, comm: text.slice(text.indexOf('(') + 1, close), state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

function signalGroup(group, signal) {
  if (group.pgid <= 0 || groupPids(group.pgid).length === 0) return;
  try {
    process.kill(-group.pgid, signal);
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the leader to stop (SIGNAL), waits up to graceMs for the whole group to go, then SIGKILLs the group. */
export async function stopGroup(group, { signal = 'SIGTERM', graceMs = 10000 } = {}) {
  if (!groups.has(group)) return;
  if (!group.exited) {
    try {
      process.kill(group.pgid, signal);
    } catch (error) {
      if (error.code !== 'ESRCH') throw error;
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (!group.exited || groupPids(group.pgid).length > 0)) await sleep(50);
  if (groupPids(group.pgid).length > 0) {
    process.stderr.write(`bench: ${group.name} did not stop within ${graceMs} ms of ${signal}; killing its process group\n`);
    signalGroup(group, 'SIGKILL');
    const killDeadline = Date.now() + 3000;
    while (Date.now() < killDeadline && groupPids(group.pgid).length > 0) await sleep(50);
  }
  groups.delete(group);
}

/** Synchronous last resort (exit, signal, overrun): SIGKILL every group still alive. */
export function killAllGroupsNow() {
  for (const group of groups) signalGroup(group, 'SIGKILL');
  groups.clear();
}

/** COUNT distinct free loopback ports, held open together so none is handed out twice. */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** One GET on a fresh connection: { status, headers, body, ms } or an error. */
export function httpGet(url, headers = {}, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(url, { headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Polls URL until it answers 200 (and CHECK(body) holds), the group dies, or timeoutMs passes. */
export async function waitForHttp(url, group, { timeoutMs = 30000, check = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (group.exited) throw new Error(`${group.name} exited (code ${group.exitCode}, signal ${group.signal}${group.error ? `, ${group.error.message}` : ''}) before ${url} answered`);
    try {
      const res = await httpGet(url, {}, 2000);
      if (res.status === 200 && check(res.body)) return;
      last = `status ${res.status}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(100);
  }
  throw new Error(`${group.name}: ${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

export { sleep };
