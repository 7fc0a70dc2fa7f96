// What a stack costs the machine, read from /proc: CPU time (utime+stime of every
// process in its group), memory (VmRSS, VmHWM, and PSS, which splits pages shared
// between forked workers fairly), and the whole machine's busy time, to tell how much
// CPU something other than the benchmark took during a run.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { groupStats } from './procs.mjs';

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
  for (const stat of groupStats(pgid)) ticks += stat.utime + stat.stime;
  return ticks / CLK_TCK;
}

/**
 * CPU seconds used so far by the processes now in group PGID, by process kind:
 * KIND_OF(stat) names each process's kind ("node", "python", "nginx"…).
 */
export function groupCpuByKind(pgid, kindOf, into = {}) {
  for (const stat of groupStats(pgid)) {
    const kind = kindOf(stat);
    into[kind] = (into[kind] ?? 0) + (stat.utime + stat.stime) / CLK_TCK;
  }
  return into;
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
 * exits, so the sum of peaks covers workers that were replaced); the same by process
 * kind (KIND_OF(stat) names it), with the last sample's RSS ("after").
 */
export class MemoryTracker {
  /** `kindOf(stat)` names a process's kind for the per-kind figures; without one, all are "all". */
  constructor(pgid, kindOf = () => 'all') {
    this.pgid = pgid;
    this.kindOf = kindOf;
    this.peakRssKb = 0;
    this.peakPssKb = 0;
    this.hwmByPid = new Map();
    this.kindByPid = new Map();
    /** @type {Record<string, number>} highest sum of VmRSS per kind at one sample */
    this.peakRssByKind = {};
    /** @type {Record<string, Record<string, number>>} VmRSS per kind of the samples marked "after" and "rest" */
    this.markedRssByKind = {};
  }

  /** Samples every process once; returns this sample's VmRSS sum per kind. `mark` keeps it as that moment's. */
  sample({ pss = false, mark = undefined } = {}) {
    let rss = 0;
    let pssSum = 0;
    const byKind = {};
    for (const stat of groupStats(this.pgid)) {
      const pid = stat.pid;
      const s = statusKb(pid);
      if (!s) continue;
      rss += s.rss;
      this.hwmByPid.set(pid, Math.max(s.hwm, this.hwmByPid.get(pid) ?? 0));
      if (!this.kindByPid.has(pid)) this.kindByPid.set(pid, this.kindOf(stat));
      const kind = this.kindByPid.get(pid);
      byKind[kind] = (byKind[kind] ?? 0) + s.rss;
      if (pss) pssSum += pssKb(pid);
    }
    this.peakRssKb = Math.max(this.peakRssKb, rss);
    if (pss) this.peakPssKb = Math.max(this.peakPssKb, pssSum);
    for (const [kind, kb] of Object.entries(byKind)) this.peakRssByKind[kind] = Math.max(kb, this.peakRssByKind[kind] ?? 0);
    if (mark) this.markedRssByKind[mark] = byKind;
    return byKind;
  }

  summary() {
    let hwm = 0;
    for (const kb of this.hwmByPid.values()) hwm += kb;
    const kinds = {};
    for (const [pid, kind] of this.kindByPid) {
      const c = (kinds[kind] ??= { count: 0, hwmKb: 0, peakRssKb: this.peakRssByKind[kind] ?? 0, afterRssKb: this.markedRssByKind.after?.[kind] ?? 0, restRssKb: this.markedRssByKind.rest?.[kind] ?? 0 });
      c.count += 1;
      c.hwmKb += this.hwmByPid.get(pid) ?? 0;
    }
    return { peakRssKb: this.peakRssKb, sumHwmKb: hwm, peakPssKb: this.peakPssKb, processes: this.hwmByPid.size, kinds };
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

/**
 * Cores of other load and of steal between two readings `seconds` apart. A reading is
 * { machine: machineCpu(), stacks: CPU seconds of the benchmark's own processes, self:
 * selfCpuSeconds() }; wrk's own CPU is not other load.
 */
export function outsideLoad(a, b, seconds, wrkCpuS = 0) {
  const busy = b.machine.task - a.machine.task - (b.stacks - a.stacks) - wrkCpuS - (b.self - a.self);
  return { other: Math.max(0, busy / seconds), steal: Math.max(0, (b.machine.steal - a.machine.steal) / seconds) };
}
