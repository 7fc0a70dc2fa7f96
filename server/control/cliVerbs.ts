// The CLI's verbs for a running server: status, scale, reload, logs, stop. They find the
// server of a folder through its state file (stateFile.ts) and talk to it over the
// control channel (client.ts). Exit codes: 0 done, 1 failed (or no server), 2 usage.
import { ServeStackError } from '../errors';
import type { LogLine, Snapshot, StackReport, WorkerInfo } from '../protocol';
import { connectControl, type ControlClient } from './client';
import { canonicalDir, pidAlive, readServerState, removeServerState, removeStaleServerState, type ReadServerState } from './stateFile';

export type ControlVerb = 'status' | 'scale' | 'reload' | 'logs' | 'stop' | 'dump-stack' | 'debug' | 'stop-debugging';
export const CONTROL_VERBS: readonly ControlVerb[] = ['status', 'scale', 'reload', 'logs', 'stop', 'dump-stack', 'debug', 'stop-debugging'];

export interface ControlVerbOptions {
  /** The folder whose server to steer. */
  dir: string;
  out: (s: string) => void;
  err: (s: string) => void;
  /** Ends `logs -f` (besides Ctrl-C and the server stopping). */
  signal?: AbortSignal;
  /** Where the state directory is looked up (XDG_RUNTIME_DIR, LOCALAPPDATA); process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** How long `stop` waits for the server to exit (default 60 s). */
  stopTimeoutMs?: number;
}

export const CONTROL_VERB_USAGE: Record<ControlVerb, string> = {
  status: 'servestack status [--dir DIR]            pools and workers of the running server',
  scale: 'servestack scale [POOL] N [--dir DIR]     run N workers in POOL (the only pool when omitted)',
  reload: 'servestack reload [POOL] [--dir DIR]      restart the workers of POOL (all pools when omitted), one at a time',
  logs: 'servestack logs [-f] [-n N] [--dir DIR]   print the latest N log lines (200); -f follows until Ctrl-C',
  stop: 'servestack stop [--dir DIR]              stop the server and wait until it has exited',
  'dump-stack': 'servestack dump-stack WORKER [--dir DIR]  every thread\'s Python stack of a (busy) worker',
  debug: 'servestack debug [POOL] [--worker ID] [--all] [--pin | --pin-route PATH] [--debug-port N] [--dir DIR]\n                                           restart workers under debugpy (rolling) and print their ports',
  'stop-debugging': 'servestack stop-debugging [POOL] [--dir DIR]  back to normal workers, rolling',
};

class UsageError extends Error {}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

export function formatStatus(s: Snapshot, now = Date.now()): string {
  const out: string[] = [];
  out.push(`ServeStack ${s.server.version} serving ${s.server.dir} at ${s.server.url} (pid ${s.server.pid}, up ${formatDuration(now - s.server.startedAt)})`);
  out.push('');
  const live = (w: WorkerInfo): boolean => w.state !== 'exited';
  out.push(
    formatTable([
      ['POOL', 'KIND', 'WORKERS', 'STATE', 'APP'],
      ...s.pools.map((p) => [
        p.name,
        p.kind,
        `${s.workers.filter((w) => w.pool === p.name && live(w)).length}/${p.wanted}`,
        p.state,
        p.app ?? p.command ?? '',
      ]),
    ]),
  );
  for (const p of s.pools) if (p.failure) out.push(`  ${p.name}: ${p.failure}`);
  out.push('');
  if (s.workers.length === 0) {
    out.push('no workers');
  } else {
    out.push(
      formatTable([
        ['ID', 'POOL', 'PID', 'STATE', 'REQUESTS', 'IN-FLIGHT', 'MEMORY', 'UPTIME'],
        ...[...s.workers]
          .sort((a, b) => a.pool.localeCompare(b.pool) || a.id - b.id)
          .map((w) => [
            String(w.id),
            w.pool,
            w.pid === undefined ? '-' : String(w.pid),
            w.state === 'exited' && w.exitCode !== undefined ? `exited (${w.exitCode})` : w.state,
            String(w.requests),
            String(w.inFlight),
            formatBytes(w.rssBytes),
            live(w) ? formatDuration(now - w.startedAt) : '-',
          ]),
      ]),
    );
  }
  for (const w of s.workers) {
    if (w.debug) out.push(`  worker ${w.id}: debugpy on 127.0.0.1:${w.debug.port}${w.debug.paused ? `, paused in debugger${w.debug.where ? ` at ${w.debug.where.file}:${w.debug.where.line}` : ''}` : ''}${w.debug.pinned ? ', requests pinned to it' : ''}`);
    if (w.lastTimeout) out.push(`  worker ${w.id}: last timeout: stuck in ${w.lastTimeout.file}:${w.lastTimeout.line} in ${w.lastTimeout.function}`);
  }
  if (s.routes.length > 0) {
    out.push('');
    out.push(formatTable([['ROUTE', 'TO'], ...[...s.routes].sort((a, b) => a.index - b.index).map((r) => [r.path, `${r.kind} ${r.target}`])]));
  }
  return out.join('\n');
}

function pad2(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

export function formatLogLine(l: LogLine): string {
  const d = new Date(l.time);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${pad2(d.getMilliseconds(), 3)}`;
  const who = l.pool !== undefined ? `${l.pool}${l.workerId !== undefined ? `#${l.workerId}` : ''}` : l.workerId !== undefined ? `#${l.workerId}` : '';
  return `${time} ${l.level.toUpperCase().padEnd(5)} ${l.source}${who ? ` ${who}` : ''}: ${l.text}`;
}

function parseCount(s: string | undefined, what: string): number {
  if (s === undefined || !/^\d+$/.test(s)) throw new UsageError(`${what} must be a whole number${s === undefined ? '' : `, not "${s}"`}`);
  return Number(s);
}

function noOptions(args: string[], max: number, verb: ControlVerb): string[] {
  const bad = args.find((a) => a.startsWith('-') && !/^\d+$/.test(a));
  if (bad) throw new UsageError(`unknown option ${bad}`);
  if (args.length > max) throw new UsageError(`too many arguments for ${verb}: ${args.join(' ')}`);
  return args;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait until the pid has exited; false on timeout. */
async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function findServer(dir: string, opts: ControlVerbOptions): ReadServerState | undefined {
  const found = readServerState(dir, opts.env);
  const serveHint = `start one with \`servestack serve ${shellQuote(dir)}\``;
  if (!found) {
    opts.err(`no ServeStack server runs for ${dir}; ${serveHint}`);
    return undefined;
  }
  if (found.stale) {
    removeStaleServerState(found);
    const who = found.pid > 0 ? `its server (pid ${found.pid}) no longer runs` : 'it could not be read';
    opts.err(`no ServeStack server runs for ${dir}: removed a stale state file (${who}); ${serveHint}`);
    return undefined;
  }
  return found;
}

async function follow(client: ControlClient, lines: LogLine[], opts: ControlVerbOptions, buffered: LogLine[], stoppingSeen: boolean): Promise<number> {
  const key = (l: LogLine): string => `${l.time}\0${l.source}\0${l.workerId ?? ''}\0${l.text}`;
  const printed = new Set(lines.map(key));
  for (const l of buffered) if (!printed.has(key(l))) opts.out(formatLogLine(l));
  return new Promise<number>((resolve) => {
    let stopping = stoppingSeen;
    let finished = false;
    const off = client.onEvent((e) => {
      if (e.type === 'log') opts.out(formatLogLine(e.line));
      else if (e.type === 'stopping') stopping = true;
    });
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      off();
      process.off('SIGINT', onSigint);
      opts.signal?.removeEventListener('abort', onAbort);
      void client.close().then(() => resolve(code));
    };
    const onSigint = (): void => finish(0);
    const onAbort = (): void => finish(0);
    process.once('SIGINT', onSigint);
    if (opts.signal?.aborted) return finish(0);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    void client.closed.then(({ code }) => {
      if (finished) return; // closed by us
      opts.err(stopping || code === 1001 ? 'the server stopped' : `the control channel closed (${code})`);
      finish(stopping || code === 1001 ? 0 : 1);
    });
  });
}

/** After a failed request: whether the channel closed because the server stops (its `stopping` event or close code 1001). */
async function stoppedServer(client: ControlClient, stoppingSeen: () => boolean): Promise<boolean> {
  const { code } = await client.closed;
  return stoppingSeen() || code === 1001;
}

type ParsedVerb =
  | { verb: 'status' }
  | { verb: 'scale'; pool?: string; workers: number }
  | { verb: 'reload'; pool?: string }
  | { verb: 'logs'; follow: boolean; lines?: number }
  | { verb: 'stop' }
  | { verb: 'dump-stack'; worker: number }
  | { verb: 'debug'; pool?: string; worker?: number; all: boolean; pin: boolean; pinRoute?: string; port?: number }
  | { verb: 'stop-debugging'; pool?: string };

/** Check a verb's arguments before any server is looked for. */
export function parseVerbArgs(verb: ControlVerb, args: string[]): ParsedVerb {
  switch (verb) {
    case 'status':
    case 'stop':
      noOptions(args, 0, verb);
      return { verb };
    case 'scale': {
      const rest = noOptions(args, 2, verb);
      if (rest.length === 0) throw new UsageError('scale needs a worker count: servestack scale [POOL] N');
      const workers = parseCount(rest[rest.length - 1], 'the worker count');
      return { verb, pool: rest.length === 2 ? rest[0] : undefined, workers };
    }
    case 'reload':
      return { verb, pool: noOptions(args, 1, verb)[0] };
    case 'logs': {
      let followMode = false;
      let lines: number | undefined;
      for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === '-f' || a === '--follow') followMode = true;
        else if (a === '-n' || a === '--lines') lines = parseCount(args[++i], 'the line count');
        else if (/^-n\d+$/.test(a)) lines = parseCount(a.slice(2), 'the line count');
        else throw new UsageError(`unknown argument ${a}`);
      }
      if (lines === 0) throw new UsageError('the line count must be at least 1');
      return { verb, follow: followMode, lines };
    }
    case 'dump-stack': {
      const rest = noOptions(args, 1, verb);
      if (rest.length === 0) throw new UsageError('dump-stack needs a worker id (servestack status lists them)');
      return { verb, worker: parseCount(rest[0], 'the worker id') };
    }
    case 'stop-debugging':
      return { verb, pool: noOptions(args, 1, verb)[0] };
    case 'debug': {
      const parsed: Extract<ParsedVerb, { verb: 'debug' }> = { verb, all: false, pin: false };
      for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === '--all') parsed.all = true;
        else if (a === '--pin') parsed.pin = true;
        else if (a === '--pin-route') parsed.pinRoute = args[++i];
        else if (a === '--worker') parsed.worker = parseCount(args[++i], 'the worker id');
        else if (a === '--debug-port') parsed.port = parseCount(args[++i], 'the debug port');
        else if (a.startsWith('-')) throw new UsageError(`unknown argument ${a}`);
        else if (parsed.pool === undefined) parsed.pool = a;
        else throw new UsageError(`unexpected argument ${a}`);
      }
      if (parsed.pinRoute !== undefined && !parsed.pinRoute.startsWith('/')) throw new UsageError('--pin-route takes a route path starting with /');
      return parsed;
    }
  }
}

/** "stuck in app.py:42 in slow_query", then every thread's frames, innermost last. */
export function formatStackReport(report: StackReport, workerId: number): string {
  const lines = [`worker ${workerId} (pid ${report.pid})${report.stuck ? `: in ${report.stuck.file}:${report.stuck.line} in ${report.stuck.function}` : ''}`];
  for (const t of report.threads) {
    lines.push('', `thread ${t.name}:`);
    for (const f of t.frames) lines.push(`  ${f.file}:${f.line} in ${f.function}`);
  }
  return lines.join('\n');
}

async function runVerb(v: ParsedVerb, dir: string, server: ReadServerState, client: ControlClient, opts: ControlVerbOptions): Promise<number> {
  switch (v.verb) {
    case 'status': {
      const snapshot = await client.request({ type: 'status' });
      opts.out(formatStatus(snapshot));
      return 0;
    }
    case 'scale': {
      await client.request({ type: 'scale', pool: v.pool, workers: v.workers });
      const name = v.pool ?? (client.snapshot.pools.length === 1 ? client.snapshot.pools[0].name : 'the pool');
      opts.out(`${name}: scaling to ${v.workers} worker${v.workers === 1 ? '' : 's'}`);
      return 0;
    }
    case 'reload': {
      await client.request({ type: 'reload', pool: v.pool });
      opts.out(v.pool ? `reloaded ${v.pool}` : 'reloaded every pool');
      return 0;
    }
    case 'logs': {
      // In follow mode, listen before asking for the recent lines so none falls between the two.
      const buffered: LogLine[] = [];
      let stopping = false;
      const off = v.follow
        ? client.onEvent((e) => {
            if (e.type === 'log') buffered.push(e.line);
            else if (e.type === 'stopping') stopping = true;
          })
        : undefined;
      let lines: LogLine[];
      try {
        ({ lines } = await client.request({ type: 'logs', lines: v.lines }));
      } catch (err) {
        off?.();
        // A server that stops while `logs -f` connects ends the follow the way a later stop
        // does: its last lines, "the server stopped", exit 0 (not a channel error).
        if (v.follow && err instanceof ServeStackError && err.code === 'CONTROL_CONNECTION_FAILED' && (await stoppedServer(client, () => stopping))) {
          for (const l of buffered) opts.out(formatLogLine(l));
          opts.err('the server stopped');
          return 0;
        }
        throw err;
      }
      off?.();
      for (const l of lines) opts.out(formatLogLine(l));
      return v.follow ? follow(client, lines, opts, buffered, stopping) : 0;
    }
    case 'dump-stack': {
      opts.out(formatStackReport(await client.request({ type: 'dumpStack', worker: v.worker }), v.worker));
      return 0;
    }
    case 'debug': {
      const { verb: _verb, ...options } = v;
      const result = await client.request({ type: 'debugWorkers', ...options }, { timeoutMs: 60_000 });
      for (const w of result.workers) opts.out(`worker ${w.id} of pool ${w.pool}: debugpy listening on 127.0.0.1:${w.port}`);
      return 0;
    }
    case 'stop-debugging': {
      await client.request({ type: 'stopDebugging', pool: v.pool }, { timeoutMs: 60_000 });
      opts.out(v.pool ? `${v.pool}: back to normal workers` : 'every pool: back to normal workers');
      return 0;
    }
    case 'stop': {
      try {
        await client.request({ type: 'stop' }, { timeoutMs: 10_000 });
      } catch (err) {
        // The server may close the channel as it stops; only a server that still runs is a failure.
        if (!(err instanceof ServeStackError && err.code === 'CONTROL_CONNECTION_FAILED')) throw err;
      }
      const timeoutMs = opts.stopTimeoutMs ?? 60_000;
      if (!(await waitForExit(server.pid, timeoutMs))) {
        opts.err(`the ServeStack server for ${dir} (pid ${server.pid}) still runs ${Math.round(timeoutMs / 1000)} s after it was asked to stop; end it with \`kill ${server.pid}\``);
        return 1;
      }
      removeServerState(dir, server.pid, opts.env);
      opts.out(`stopped the ServeStack server for ${dir} (pid ${server.pid})`);
      return 0;
    }
  }
}

export async function runControlVerb(verb: ControlVerb, args: string[], opts: ControlVerbOptions): Promise<number> {
  if (!CONTROL_VERBS.includes(verb)) {
    opts.err(`unknown verb ${verb}; known: ${CONTROL_VERBS.join(', ')}`);
    return 2;
  }
  let parsed: ParsedVerb;
  try {
    parsed = parseVerbArgs(verb, args);
  } catch (err) {
    opts.err(`${(err as Error).message}\nusage: ${CONTROL_VERB_USAGE[verb]}`);
    return 2;
  }
  const dir = canonicalDir(opts.dir);
  let client: ControlClient | undefined;
  try {
    const server = findServer(dir, opts);
    if (!server) return 1;
    try {
      client = await connectControl({ port: server.controlPort, token: server.token });
    } catch (err) {
      const reason = err instanceof ServeStackError ? err.message : String(err);
      opts.err(`the ServeStack server for ${dir} (pid ${server.pid}) does not answer on its control port: ${reason}`);
      return 1;
    }
    return await runVerb(parsed, dir, server, client, opts);
  } catch (err) {
    opts.err(err instanceof ServeStackError ? err.format() : `error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await client?.close();
  }
}
