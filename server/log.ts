// The server's one log: every line (access, worker output, lifecycle, config) is a
// LogLine event for the control channel and a human line on the console. Console
// writes are batched: a line waits for the end of its event-loop turn, and under load
// for at most FLUSH_INTERVAL_MS after the previous write (as NGINX's buffered access
// log does), since one write per turn still cost a write and a stream pass per request
// or two. A waiting line is held as bytes (consoleBytes.ts), so its string dies young.
import { ConsoleBytes } from './consoleBytes';
import type { LogLine } from './protocol';

export type LogListener = (line: LogLine) => void;
type Level = LogLine['level'];
const LEVEL_RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const NO_EXTRA: { workerId?: number; pool?: string } = Object.freeze({});

/** The last `size` lines, oldest first, without copying on every push. */
class Ring {
  private readonly items: (LogLine | undefined)[];
  private next = 0;
  constructor(private readonly size: number) {
    this.items = new Array(size);
  }
  push(line: LogLine): void {
    this.items[this.next] = line;
    this.next = (this.next + 1) % this.size;
  }
  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (let i = 0; i < this.size; i++) {
      const line = this.items[(this.next + i) % this.size];
      if (line) out.push(line);
    }
    return out;
  }
}

/** The console gets at most one write per this many ms (a quiet server's line goes at once). */
const FLUSH_INTERVAL_MS = 10;

export class Logger {
  private listeners = new Set<LogListener>();
  // Access lines are kept apart and fewer: at thousands of requests a second, every
  // retained line survives the young-generation GC, whose pauses land in the p99.
  private readonly recentAccess: Ring;
  private readonly recentOther: Ring;
  private readonly consoleBytes = new ConsoleBytes();
  private flushScheduled = false;
  private lastFlushAt = 0;

  constructor(
    /** Writes the bytes and calls `written` once the stream is done with them. */
    private readonly consoleOut: ((bytes: Uint8Array, written: () => void) => void) | undefined = (bytes, written) => process.stdout.write(bytes, written),
    private readonly consoleLevel: Level = 'info',
    keep = 1000,
    keepAccess = 200,
  ) {
    this.recentOther = new Ring(keep);
    this.recentAccess = new Ring(keepAccess);
  }

  onLine(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  recentLines(n: number): LogLine[] {
    const merged = [...this.recentOther.lines(), ...this.recentAccess.lines()];
    merged.sort((a, b) => a.time - b.time); // stable: lines of one millisecond keep their order
    return merged.slice(-n);
  }

  /** `now`: the line's epoch ms when the caller has it already (an access line's, wallClock.ts). */
  log(level: Level, source: LogLine['source'], text: string, extra: { workerId?: number; pool?: string } = NO_EXTRA, now = Date.now()): void {
    const line: LogLine = { time: now, level, source, text };
    // Set one by one: a spread of `extra` per access line was a measurable share of logging it.
    if (extra.workerId !== undefined) line.workerId = extra.workerId;
    if (extra.pool !== undefined) line.pool = extra.pool;
    (source === 'access' ? this.recentAccess : this.recentOther).push(line);
    for (const listener of this.listeners) listener(line);
    if (this.consoleOut && LEVEL_RANK[level] >= LEVEL_RANK[this.consoleLevel]) {
      if (source === 'access') this.consoleBytes.append(text, true);
      else this.consoleBytes.append(formatForConsole(line), false);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        const wait = this.lastFlushAt + FLUSH_INTERVAL_MS - now;
        if (wait <= 0) setImmediate(this.flush);
        else setTimeout(this.flush, wait);
      }
    }
  }

  info(source: LogLine['source'], text: string, extra?: { workerId?: number; pool?: string }): void {
    this.log('info', source, text, extra);
  }
  warn(source: LogLine['source'], text: string, extra?: { workerId?: number; pool?: string }): void {
    this.log('warn', source, text, extra);
  }
  error(source: LogLine['source'], text: string, extra?: { workerId?: number; pool?: string }): void {
    this.log('error', source, text, extra);
  }
  debug(source: LogLine['source'], text: string, extra?: { workerId?: number; pool?: string }): void {
    this.log('debug', source, text, extra);
  }

  readonly flush = (): void => {
    this.flushScheduled = false;
    this.lastFlushAt = Date.now();
    if (this.consoleBytes.empty || !this.consoleOut) return;
    for (const piece of this.consoleBytes.take()) this.consoleOut(piece, () => this.consoleBytes.done(piece));
  };
}

export function formatForConsole(line: LogLine): string {
  if (line.source === 'access') return line.text + '\n';
  const tag = line.workerId !== undefined ? `[${line.pool ?? 'pool'}:${line.workerId}]` : `[${line.source}]`;
  const level = line.level === 'info' ? '' : `${line.level}: `;
  return `${tag} ${level}${line.text}\n`;
}
