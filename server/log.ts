// The server's one log: every line (access, worker output, lifecycle, config) is a
// LogLine event for the control channel and a human line on the console. Console
// writes are batched per event-loop turn: under load one write per request costs more
// than the request itself.
import type { LogLine } from './protocol';

export type LogListener = (line: LogLine) => void;
type Level = LogLine['level'];
const LEVEL_RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  private listeners = new Set<LogListener>();
  private recent: LogLine[] = [];
  private consoleBuffer: string[] = [];
  private flushScheduled = false;

  constructor(
    private readonly consoleOut: ((text: string) => void) | undefined = (text) => process.stdout.write(text),
    private readonly consoleLevel: Level = 'info',
    private readonly keep = 1000,
  ) {}

  onLine(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  recentLines(n: number): LogLine[] {
    return this.recent.slice(-n);
  }

  log(level: Level, source: LogLine['source'], text: string, extra: { workerId?: number; pool?: string } = {}): void {
    const line: LogLine = { time: Date.now(), level, source, text, ...extra };
    this.recent.push(line);
    if (this.recent.length > this.keep * 2) this.recent = this.recent.slice(-this.keep);
    for (const listener of this.listeners) listener(line);
    if (this.consoleOut && LEVEL_RANK[level] >= LEVEL_RANK[this.consoleLevel]) {
      this.consoleBuffer.push(formatForConsole(line));
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
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
    if (this.consoleBuffer.length === 0 || !this.consoleOut) return;
    const text = this.consoleBuffer.join('');
    this.consoleBuffer = [];
    this.consoleOut(text);
  };
}

export function formatForConsole(line: LogLine): string {
  if (line.source === 'access') return line.text + '\n';
  const tag = line.workerId !== undefined ? `[${line.pool ?? 'pool'}:${line.workerId}]` : `[${line.source}]`;
  const level = line.level === 'info' ? '' : `${line.level}: `;
  return `${tag} ${level}${line.text}\n`;
}
