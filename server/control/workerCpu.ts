// Each worker's CPU use, for the dashboard: on Linux, the user + system clock ticks in
// /proc/<pid>/stat between two samples, as a percentage of one core. Elsewhere nothing
// (the figure stays absent rather than made up).
import { readFileSync } from 'node:fs';

/** The kernel's USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime from the text of /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function cpuTicks(statText: string): number | undefined {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

export class CpuSampler {
  private readonly last = new Map<number, { ticks: number; at: number }>();
  private readonly percent = new Map<number, number>();

  constructor(private readonly read: (pid: number) => string | undefined = readStat) {}

  /** Take a sample of these pids (others are forgotten). */
  sample(pids: readonly number[], now = performance.now()): void {
    const live = new Set(pids);
    for (const pid of this.last.keys()) {
      if (!live.has(pid)) {
        this.last.delete(pid);
        this.percent.delete(pid);
      }
    }
    for (const pid of pids) {
      const text = this.read(pid);
      const ticks = text === undefined ? undefined : cpuTicks(text);
      if (ticks === undefined) continue;
      const before = this.last.get(pid);
      this.last.set(pid, { ticks, at: now });
      if (before && now > before.at) {
        const seconds = (now - before.at) / 1000;
        this.percent.set(pid, Math.round(((ticks - before.ticks) / CLOCK_TICKS_PER_SECOND / seconds) * 1000) / 10);
      }
    }
  }

  percentOf(pid: number | undefined): number | undefined {
    return pid === undefined ? undefined : this.percent.get(pid);
  }
}

function readStat(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between the list and the read; its exit event follows
  }
}
