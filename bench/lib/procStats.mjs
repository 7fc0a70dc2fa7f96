// What a stack costs the machine, read from /proc: CPU time (utime+stime of every
// process in its group), memory (VmRSS, VmHWM, and PSS, which splits pages shared
// between forked workers fairly), and the whole machine's busy time, to tell how much
// CPU something other than the benchmark took during a run.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { groupPids, readStat } from './procs.mjs';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds used so far by the processes now in group PGID. */
export function groupCpuSeconds(pgid) {
  let ticks = 0;
  for (const pid of groupPids(pgid)) {
    const stat = readStat(pid);
    if (stat) ticks += stat.utime + stat.stime;
  }
  return ticks / CLK_TCK;
}

function statusKb(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return undefined;
  }
}

function pssKb(pid) {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Tracks one process group's memory while it runs: the highest sum of VmRSS seen at
 * one sample, the highest sum of PSS, and each process's own VmHWM (kept after it
 * exits, so the sum of peaks covers workers that were replaced).
 */
export class MemoryTracker {
  constructor(pgid) {
    this.pgid = pgid;
    this.peakRssKb = 0;
    this.peakPssKb = 0;
    this.hwmByPid = new Map();
    this.commByPid = new Map();
  }

  sample({ pss = false } = {}) {
    let rss = 0;
    let pssSum = 0;
    for (const pid of groupPids(this.pgid)) {
      const s = statusKb(pid);
      if (!s) continue;
      rss += s.rss;
      this.hwmByPid.set(pid, Math.max(s.hwm, this.hwmByPid.get(pid) ?? 0));
      if (!this.commByPid.has(pid)) this.commByPid.set(pid, readStat(pid)?.comm ?? '?');
      if (pss) pssSum += pssKb(pid);
    }
    this.peakRssKb = Math.max(this.peakRssKb, rss);
    if (pss) this.peakPssKb = Math.max(this.peakPssKb, pssSum);
  }

  summary() {
    let hwm = 0;
    for (const kb of this.hwmByPid.values()) hwm += kb;
    const comms = {};
    for (const [pid, comm] of this.commByPid) {
      const c = (comms[comm] ??= { count: 0, hwmKb: 0 });
      c.count += 1;
      c.hwmKb += this.hwmByPid.get(pid) ?? 0;
    }
    return { peakRssKb: this.peakRssKb, sumHwmKb: hwm, peakPssKb: this.peakPssKb, processes: this.hwmByPid.size, comms };
  }
}

/** The machine's CPU counters (seconds, all cores together) from /proc/stat. */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  const t = (x) => (x ?? 0) / CLK_TCK;
  // user+nice+system is what processes' utime+stime add up to; irq/softirq time (much of
  // it our own loopback traffic) is kept apart rather than blamed on other processes.
  return { task: t(user) + t(nice) + t(system), irq: t(irq) + t(softirq), idle: t(idle) + t(iowait), steal: t(steal) };
}

/** Own CPU seconds of this Node process. */
export function selfCpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
