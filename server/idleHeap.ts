// When the front goes quiet after load, its heap goes back to what is live. V8 grows the
// heap under load and gives the pages back at its next full GC, which an idle server may
// not run for a while: after a benchmark the front sat at 73 MiB, and at 66 MiB after one
// full GC (bench/RESULTS.md, 2026-12-02 14:00). Browsers collect in idle time for this
// reason; Node tells V8 nothing of idleness, so the front does it itself: after a spell
// of requests, once none has come for 5 s, one full GC. It costs about 10 ms at a moment
// nobody is waiting, once per spell of load. Why 5 s: V8 gives back its young generation's
// pages only once it sees a low allocation rate, which it measures over the last 5 s; a
// collection 2 s after the load freed the garbage but kept the pages.
import v8 from 'node:v8';
import vm from 'node:vm';

export interface IdleHeapOptions {
  /** A count that moves whenever a request arrives (the proxy's). */
  activity: () => number;
  /** Checks this often (ms). */
  everyMs?: number;
  /** Checks without activity before collecting (default 5: see above). */
  quietChecks?: number;
  /** Requests since the last collection that make a spell worth one (a handful leave little garbage). */
  minRequests?: number;
  /** Told what a collection gave back (for the log, at debug level). */
  collected?: (beforeBytes: number, afterBytes: number, ms: number) => void;
}

export class IdleHeap {
  private timer: NodeJS.Timeout | undefined;
  private lastActivity: number;
  /** Activity at the last collection. */
  private collectedAt: number;
  private quiet = 0;
  /** The start leaves garbage too (the config's schema, module loading): the first quiet spell collects it. */
  private startupPending = true;
  private readonly collect = fullGc();

  constructor(private readonly options: IdleHeapOptions) {
    this.lastActivity = this.collectedAt = options.activity();
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.options.everyMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check (the timer's): true when it collected. */
  check(): boolean {
    const activity = this.options.activity();
    if (activity !== this.lastActivity) {
      this.lastActivity = activity;
      this.quiet = 0;
      return false;
    }
    if (++this.quiet < (this.options.quietChecks ?? 5)) return false;
    if (!this.startupPending && activity - this.collectedAt < (this.options.minRequests ?? 500)) return false;
    this.startupPending = false;
    this.collectedAt = activity;
    const before = heapBytes();
    const started = performance.now();
    this.collect();
    this.options.collected?.(before, heapBytes(), performance.now() - started);
    return true;
  }
}

function heapBytes(): number {
  return v8.getHeapStatistics().total_heap_size;
}

/**
 * V8's gc() without starting Node with --expose-gc: the flag makes new contexts carry the
 * function, so one is made, the function taken, and the flag set back. (A flag changed
 * after start is what Node's docs warn about; this one only decides what a new context
 * gets, and Jest's leak detector takes gc() the same way.)
 */
function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  v8.setFlagsFromString('--expose-gc');
  try {
    return vm.runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
