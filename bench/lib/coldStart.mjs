// Cold start: how long `servestack serve` takes from spawn to its first 200 on the Flask
// app (Node start, config, 2 Python workers importing Flask). Each attempt is a fresh
// process group in its own folder on a fresh port, polled every 10 ms, then stopped.
import path from 'node:path';
import { freePorts, httpGet, sleep, startGroup, stopGroup } from './procs.mjs';
import { groupCpuSeconds, machineCpu, outsideLoad, selfCpuSeconds } from './procStats.mjs';
import { serveStackCommand } from './stacks.mjs';
import { median } from './stats.mjs';

const POLL_MS = 10;
const GIVE_UP_MS = 30000;

/**
 * Returns { runs: [ms…], medianMs, otherCores: [cores busy elsewhere during each attempt],
 * stealCores: [cores the hypervisor took during each attempt] }.
 */
export async function measureColdStart({ tmp, fixturesDir, cli, repo, runs, log }) {
  const times = [];
  const other = [];
  const steal = [];
  for (let i = 0; i < runs; i++) {
    const dir = path.join(tmp, `cold-start-${i + 1}`);
    const [port] = await freePorts(1);
    const run = serveStackCommand({ dir, fixturesDir, port, cli });
    const url = `http://127.0.0.1:${port}/`;
    // The attempt's own processes are new: their CPU is 0 at the start.
    const before = { machine: machineCpu(), stacks: 0, self: selfCpuSeconds() };
    const t0 = performance.now();
    const group = startGroup(`servestack (cold start ${i + 1})`, run.cmd, run.args, { cwd: repo, env: run.env, stdout: '/dev/null', stderr: path.join(dir, 'servestack.err') });
    let ms;
    try {
      while (ms === undefined) {
        if (group.exited) throw new Error(`servestack exited (code ${group.exitCode}, signal ${group.signal}) before its first 200; see ${path.join(dir, 'servestack.err')}`);
        if (performance.now() - t0 > GIVE_UP_MS) throw new Error(`servestack did not answer 200 within ${GIVE_UP_MS} ms; see ${path.join(dir, 'servestack.err')}`);
        try {
          // A front that accepts before its workers are up may hold the request until
          // they are: wait for the answer rather than time it out and ask again.
          const res = await httpGet(url, {}, Math.max(1000, GIVE_UP_MS - (performance.now() - t0)));
          if (res.status === 200 && res.body.toString() === 'Hello, World!') ms = performance.now() - t0;
        } catch {
          // not listening yet
        }
        if (ms === undefined) await sleep(POLL_MS);
      }
      const load = outsideLoad(before, { machine: machineCpu(), stacks: groupCpuSeconds(group.pgid), self: selfCpuSeconds() }, ms / 1000);
      other.push(load.other);
      steal.push(load.steal);
    } finally {
      await stopGroup(group, { signal: 'SIGTERM', graceMs: 15000 });
    }
    times.push(ms);
    log(`cold start #${i + 1}: first 200 after ${ms.toFixed(0)} ms (other load ${other.at(-1).toFixed(2)} cores, steal ${steal.at(-1).toFixed(2)})`);
  }
  return { runs: times, medianMs: median(times), otherCores: other, stealCores: steal };
}
