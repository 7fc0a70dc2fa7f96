// What the output channel shows of the server's log, so that a flood of requests never
// drowns an error. Pure (no vscode): logChannel.ts feeds it lines and a clock, and writes
// what it returns.
// - Access lines are rate-bounded per status class (2xx and 3xx share one budget, 4xx and
//   5xx have their own, so a flood of 200s cannot hide the 500s): a burst, then a steady
//   rate. What goes over is counted, and each window ends in one line of counts:
//   "… 9,812 more requests in the last 5 s: 9,700 2xx, 112 5xx".
// - Every other line (errors, tracebacks, worker output, lifecycle) always passes.
// - A filter (only errors, one route, one status class) applies to access lines; errors
//   and warnings always show. A new filter replays the recent lines it matches.
// The full access log still goes to the CLI's output and the log file: this bounds the view only.
import type { LogLine } from '../server/protocol';

export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';
export type LogFilter = { kind: 'all' } | { kind: 'errors' } | { kind: 'route'; prefix: string } | { kind: 'status'; status: StatusClass };

/** A line for the channel: its level and its text (the prefix already in). */
export interface ShownLine {
  level: LogLine['level'];
  text: string;
}

export interface FloodOptions {
  /** Access lines shown at once, per budget, before the rate applies. */
  burst: number;
  /** Access lines per second, per budget, after the burst. */
  perSecond: number;
  /** How often the counts of what was held back are written. */
  windowMs: number;
  /** Recent lines kept to replay when the filter changes. */
  keep: number;
}

export const DEFAULT_FLOOD: FloodOptions = { burst: 30, perSecond: 10, windowMs: 5000, keep: 2000 };

const ACCESS = /"(\S+) (\S+)[^"]*" (\d{3}) /;

/** The method, path and status of an access line (NGINX's combined format), or undefined. */
export function parseAccess(text: string): { method: string; path: string; status: number } | undefined {
  const m = ACCESS.exec(text);
  return m ? { method: m[1], path: m[2], status: Number(m[3]) } : undefined;
}

function statusClass(status: number): StatusClass {
  return status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
}

function budgetOf(cls: StatusClass): 'ok' | '4xx' | '5xx' {
  return cls === '5xx' ? '5xx' : cls === '4xx' ? '4xx' : 'ok';
}

const ORDER: StatusClass[] = ['2xx', '3xx', '4xx', '5xx'];
const count = (n: number) => n.toLocaleString('en-US');

interface Kept { line: LogLine; text: string }

export class LogFlood {
  private filter: LogFilter = { kind: 'all' };
  private readonly tokens = new Map<string, { left: number; at: number }>();
  private held: Record<StatusClass, number> = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  private windowStart: number | undefined;
  private readonly recent: (Kept | undefined)[];
  private next = 0;

  constructor(private readonly options: FloodOptions = DEFAULT_FLOOD) {
    this.recent = new Array(options.keep);
  }

  get currentFilter(): LogFilter {
    return this.filter;
  }

  /** One line from the server; returns what to write now (nothing, the line, and maybe the counts before it). */
  push(line: LogLine, text: string, now: number): ShownLine[] {
    this.recent[this.next] = { line, text };
    this.next = (this.next + 1) % this.recent.length;
    const out = this.tick(now);
    if (!this.matches(line, text)) return out;
    if (line.source !== 'access') return [...out, { level: line.level, text }];
    const access = parseAccess(line.text);
    const cls = access ? statusClass(access.status) : '2xx';
    if (this.take(budgetOf(cls), now)) return [...out, { level: line.level, text }];
    this.windowStart ??= now;
    this.held[cls]++;
    return out;
  }

  /** The counts of what was held back, once a window has passed (call it on a timer too: a flood that stopped still gets its line). */
  tick(now: number): ShownLine[] {
    if (this.windowStart === undefined || now - this.windowStart < this.options.windowMs) return [];
    return this.summary(now);
  }

  /** A new filter: the counts so far, then the recent lines it matches (the caller clears the channel first). */
  setFilter(filter: LogFilter, now: number): ShownLine[] {
    const out = this.windowStart === undefined ? [] : this.summary(now);
    this.filter = filter;
    this.tokens.clear();
    for (let i = 0; i < this.recent.length; i++) {
      const kept = this.recent[(this.next + i) % this.recent.length];
      if (kept && this.matches(kept.line, kept.text)) out.push({ level: kept.line.level, text: kept.text });
    }
    return out;
  }

  /** The first path segments of recent requests ("/api/", "/static/"), most frequent first: choices for a route filter. */
  recentPrefixes(limit = 10): string[] {
    const seen = new Map<string, number>();
    for (const kept of this.recent) {
      if (kept?.line.source !== 'access') continue;
      const path = parseAccess(kept.text)?.path;
      if (!path) continue;
      const m = /^\/[^/?]*\/?/.exec(path);
      const prefix = m ? m[0] : '/';
      seen.set(prefix, (seen.get(prefix) ?? 0) + 1);
    }
    return [...seen].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([p]) => p);
  }

  describeFilter(): string {
    const f = this.filter;
    return f.kind === 'all' ? 'everything' : f.kind === 'errors' ? 'errors only' : f.kind === 'route' ? `requests under ${f.prefix}` : `${f.status} requests`;
  }

  private summary(now: number): ShownLine[] {
    const held = this.held;
    const total = ORDER.reduce((n, c) => n + held[c], 0);
    const seconds = Math.max(1, Math.round((now - (this.windowStart ?? now)) / 1000));
    this.held = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    this.windowStart = undefined;
    if (total === 0) return [];
    const parts = ORDER.filter((c) => held[c] > 0).map((c) => `${count(held[c])} ${c}`);
    const level: LogLine['level'] = held['5xx'] > 0 ? 'warn' : 'info';
    return [{ level, text: `… ${count(total)} more request${total === 1 ? '' : 's'} in the last ${seconds} s: ${parts.join(', ')} (not shown here; the full access log is in the server's output)` }];
  }

  private take(budget: string, now: number): boolean {
    const { burst, perSecond } = this.options;
    const bucket = this.tokens.get(budget) ?? { left: burst, at: now };
    bucket.left = Math.min(burst, bucket.left + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    this.tokens.set(budget, bucket);
    if (bucket.left < 1) return false;
    bucket.left--;
    return true;
  }

  private matches(line: LogLine, text: string): boolean {
    const f = this.filter;
    if (f.kind === 'all' || line.level === 'error' || line.level === 'warn') return true;
    if (line.source !== 'access') return false;
    const access = parseAccess(text);
    if (!access) return false;
    if (f.kind === 'errors') return access.status >= 500;
    if (f.kind === 'route') return access.path === f.prefix || access.path.startsWith(f.prefix.endsWith('/') ? f.prefix : `${f.prefix}/`) || access.path.startsWith(`${f.prefix}?`);
    return statusClass(access.status) === f.status;
  }
}
