// Debugging a live pool: the chosen workers restart (rolling: a fresh one is ready before
// the old one goes) under debugpy on a free loopback port each; the arbiter then never
// times them out nor kills them for missing heartbeats (a paused worker is not hung);
// requests may be pinned to them; Stop Debugging rolls the pool back to normal workers.
// Also the stack reports: the answer to DumpStack, kept as "last timeout: stuck in …".
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ServeStackError } from '../errors';
import type { Logger } from '../log';
import { FrameType, type StackLocation, type StackReport, type WorkerDebugInfo } from '../protocol';
import type { UpstreamRequest } from '../upstream/types';
import type { WorkerProcess } from './worker';

/** What the debugger needs of its pool (server/pool/pool.ts implements it). */
export interface DebuggablePool {
  readonly name: string;
  readonly workers: WorkerProcess[];
  /** The interpreter the pool's workers run. */
  python(): string;
  /** A fresh worker (debugged when `debug` is set) up and ready, then `old` retires; undefined when it never got ready. */
  replaceWorker(old: WorkerProcess | undefined, debug?: WorkerDebugInfo): Promise<WorkerProcess | undefined>;
  emitWorker(w: WorkerProcess): void;
}

export interface DebugOptions {
  /** One worker (by id); else one worker of the pool, or every worker with `all`. */
  worker?: number;
  all?: boolean;
  /** Send every request of the pool (pin) or of one route path (pinRoute) to the debugged worker. */
  pin?: boolean;
  pinRoute?: string;
  /** Where debugpy listens; 0 or absent: a free port the OS picks. */
  port?: number;
  /** A folder holding the `debugpy` package, used when the interpreter has none. */
  debugpyPath?: string;
}

/** How long a Dump Stack waits for the worker's report. */
const STACK_REPORT_TIMEOUT_MS = 5000;

let lastToken = 0;
function nextToken(): number {
  lastToken = lastToken >= 0x7fffffff ? 1 : lastToken + 1;
  return lastToken;
}

export class PoolDebugger {
  /** Set while workers of the pool are debugged (by debugWorkers, until stop). */
  private pin: WorkerDebugInfo['pinned'];
  private debugpyPath: string | undefined;
  /** The newest timeout's location: workers started after it show it too. */
  lastTimeout: StackLocation | undefined;
  private readonly reports = new Map<number, (report: StackReport) => void>();
  /** DumpStack tokens sent before a timeout kill: their report becomes `lastTimeout`. */
  private readonly timeoutReports = new Map<number, WorkerProcess[]>();

  constructor(private readonly pool: DebuggablePool, private readonly logger: Logger) {}

  get active(): boolean {
    return this.pool.workers.some((w) => w.debug && !w.retiring);
  }

  /** The runtime's arguments for a worker spawned with `debug`. */
  workerArgs(debug: WorkerDebugInfo | undefined): string[] {
    if (!debug) return [];
    return ['--debug-port', String(debug.port), ...(this.debugpyPath ? ['--debugpy-path', this.debugpyPath] : [])];
  }

  /** A reload replaces a debugged worker with a debugged one (on a new port: the editor attaches again). */
  carryOver(old: WorkerProcess): WorkerDebugInfo | undefined {
    return old.debug ? { port: 0, paused: false, ...(old.debug.pinned ? { pinned: old.debug.pinned } : {}) } : undefined;
  }

  async start(options: DebugOptions): Promise<WorkerProcess[]> {
    await this.checkDebugpy(options.debugpyPath);
    const live = this.pool.workers.filter((w) => !w.retiring && w.state !== 'exited');
    let chosen: (WorkerProcess | undefined)[];
    if (options.worker !== undefined) {
      const w = live.find((x) => x.id === options.worker);
      if (!w) throw new ServeStackError('CONTROL_UNKNOWN_WORKER', `pool '${this.pool.name}' has no running worker ${options.worker}`, { hint: 'see `servestack status` for the ids' });
      chosen = [w];
    } else if (options.all) {
      chosen = live.filter((w) => !w.debug);
    } else {
      const already = live.filter((w) => w.debug);
      if (already.length > 0) {
        this.setPin(options);
        return already;
      }
      // The longest-serving idle worker: the others keep their warm state.
      chosen = [live.sort((a, b) => a.inFlight - b.inFlight || a.id - b.id)[0]];
    }
    this.setPin(options);
    const started: WorkerProcess[] = [];
    let port = options.port ?? 0;
    for (const old of chosen) {
      if (old?.debug) {
        started.push(old);
        continue;
      }
      const fresh = await this.pool.replaceWorker(old, { port, paused: false, ...(this.pin ? { pinned: this.pin } : {}) });
      if (!fresh) {
        throw new ServeStackError('DEBUG_FAILED', `a worker of pool '${this.pool.name}' could not start under debugpy; the running workers keep serving`, {
          hint: 'see the log for the worker\'s last lines (is the debug port taken?)',
        });
      }
      started.push(fresh);
      if (port) port++;
    }
    return started;
  }

  /** Every debugged worker is replaced by a normal one, one at a time: no request is dropped. */
  async stop(): Promise<void> {
    this.pin = undefined;
    const debugged = this.pool.workers.filter((w) => w.debug && !w.retiring && w.state !== 'exited');
    for (const w of debugged) if (w.debug) delete w.debug.pinned;
    for (const w of debugged) {
      const fresh = await this.pool.replaceWorker(w);
      if (!fresh) throw new ServeStackError('DEBUG_FAILED', `pool '${this.pool.name}': a normal worker could not start to replace debugged worker ${w.id}; it keeps serving`);
    }
    if (debugged.length) this.logger.info('server', `pool '${this.pool.name}': debugging stopped; ${debugged.length} debugged worker${debugged.length === 1 ? '' : 's'} replaced`, { pool: this.pool.name });
  }

  private setPin(options: DebugOptions): void {
    this.pin = options.pinRoute ? { route: options.pinRoute } : options.pin ? 'pool' : undefined;
    for (const w of this.pool.workers) {
      if (!w.debug) continue;
      if (this.pin) w.debug.pinned = this.pin;
      else delete w.debug.pinned;
      this.pool.emitWorker(w);
    }
  }

  /** The worker a request must go to while it is pinned, else undefined (any worker). */
  pinnedWorker(request: UpstreamRequest): WorkerProcess | undefined {
    if (!this.pin) return undefined;
    if (typeof this.pin === 'object' && !routeMatches(this.pin.route, request.path)) return undefined;
    return this.pool.workers.find((w) => w.debug && !w.retiring && w.state !== 'exited');
  }

  onReady(w: WorkerProcess): void {
    if (!w.debug) return;
    this.logger.info('server', `worker ${w.id} of pool '${this.pool.name}': debugpy listening on 127.0.0.1:${w.debug.port} (${w.debug.debugpy ?? 'debugpy'}); its request timeout and heartbeat checks are off while debugged`, { pool: this.pool.name, workerId: w.id });
  }

  /** StackReport and DebugState frames from a worker. */
  onFrame(w: WorkerProcess, type: number, token: number, payload: Buffer): void {
    let data: unknown;
    try {
      data = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (type === FrameType.DebugState) {
      if (!w.debug) return;
      const state = data as { paused: boolean; where?: StackLocation };
      w.debug.paused = state.paused === true;
      if (state.where) w.debug.where = state.where;
      else delete w.debug.where;
      const at = state.where ? ` at ${state.where.file}:${state.where.line} in ${state.where.function}` : '';
      this.logger.info('server', `worker ${w.id} ${w.debug.paused ? `paused in debugger${at}` : 'resumed'}`, { pool: this.pool.name, workerId: w.id });
      this.pool.emitWorker(w);
      return;
    }
    const report = data as StackReport;
    this.reports.get(token)?.(report);
    this.reports.delete(token);
    const marked = this.timeoutReports.get(token);
    if (marked && report.stuck) {
      this.timeoutReports.delete(token);
      this.lastTimeout = report.stuck;
      this.logger.error('server', `worker ${w.id} was stuck in ${report.stuck.file}:${report.stuck.line} in ${report.stuck.function}`, { pool: this.pool.name, workerId: w.id });
      for (const x of marked) {
        x.lastTimeout = report.stuck;
        this.pool.emitWorker(x);
      }
    }
  }

  /** The token for the DumpStack before a timeout kill; `replacements` will show where it was stuck. */
  timeoutToken(w: WorkerProcess, replacements: WorkerProcess[]): number {
    const token = nextToken();
    this.timeoutReports.set(token, [w, ...replacements]);
    setTimeout(() => this.timeoutReports.delete(token), STACK_REPORT_TIMEOUT_MS).unref();
    return token;
  }

  /** Every thread's stack from a (busy) worker, read by its control thread while the app runs. */
  dumpStack(w: WorkerProcess): Promise<StackReport> {
    const token = nextToken();
    return new Promise<StackReport>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reports.delete(token);
        const why = w.debug?.paused ? ' (it is paused in the debugger: the debugger shows its stacks)' : '';
        reject(new ServeStackError('CONTROL_TIMEOUT', `worker ${w.id} sent no stack within ${STACK_REPORT_TIMEOUT_MS / 1000}s${why}`));
      }, STACK_REPORT_TIMEOUT_MS);
      this.reports.set(token, (report) => {
        clearTimeout(timer);
        resolve(report);
      });
      w.dumpStack(token);
    });
  }

  /** Is debugpy importable by the pool's interpreter, or in the folder given? The log says which is used. */
  private async checkDebugpy(folder: string | undefined): Promise<void> {
    const python = this.pool.python();
    const own = await new Promise<boolean>((resolve) => {
      execFile(python, ['-c', 'import debugpy'], { timeout: 15000, windowsHide: true }, (error) => resolve(!error));
    });
    if (own) {
      this.debugpyPath = undefined;
      this.logger.info('server', `pool '${this.pool.name}': using the debugpy of ${python}`, { pool: this.pool.name });
      return;
    }
    if (folder && existsSync(path.join(folder, 'debugpy', '__init__.py'))) {
      this.debugpyPath = folder;
      this.logger.info('server', `pool '${this.pool.name}': ${python} has no debugpy; using the one in ${folder}`, { pool: this.pool.name });
      return;
    }
    throw new ServeStackError('DEBUGPY_NOT_FOUND', `${python} (the interpreter of pool '${this.pool.name}') cannot import debugpy${folder ? `, and ${folder} holds no debugpy package` : ''}`, {
      hint: 'install it for that interpreter (pip install debugpy, or apt install python3-debugpy), or set servestack.debug.debugpyPath to a folder that holds the debugpy package',
    });
  }
}

/** A route path as the router matches a prefix: "/api" takes "/api" and "/api/…". */
function routeMatches(route: string, requestPath: string): boolean {
  if (route === '/' || requestPath === route) return true;
  return requestPath.startsWith(route.endsWith('/') ? route : `${route}/`);
}

// ── the control verbs, over every pool of the server (server/main.ts delegates here) ──

interface PythonPoolLike extends DebuggablePool {
  readonly debugger: PoolDebugger;
}

/** The Python pool a debug command means: by name, by the worker it names, or the only one. */
function choosePool(pools: PythonPoolLike[], poolName: string | undefined, worker: number | undefined): PythonPoolLike {
  if (poolName !== undefined) {
    const pool = pools.find((p) => p.name === poolName);
    if (!pool) throw new ServeStackError('CONTROL_UNKNOWN_POOL', `no Python pool is named '${poolName}'; Python pools: ${pools.map((p) => p.name).join(', ') || 'none'}`);
    return pool;
  }
  if (worker !== undefined) {
    const pool = pools.find((p) => p.workers.some((w) => w.id === worker));
    if (!pool) throw new ServeStackError('CONTROL_UNKNOWN_WORKER', `no Python worker has id ${worker}`, { hint: 'see `servestack status` for the ids' });
    return pool;
  }
  if (pools.length === 1) return pools[0];
  throw new ServeStackError('CONTROL_UNKNOWN_POOL', `name a pool to debug: this server runs ${pools.map((p) => p.name).join(', ') || 'no Python pools'}`);
}

export async function debugWorkersIn(pools: PythonPoolLike[], options: DebugOptions & { pool?: string }): Promise<{ workers: { id: number; pool: string; port: number; debugpy: string }[] }> {
  const pool = choosePool(pools, options.pool, options.worker);
  const workers = await pool.debugger.start(options);
  return { workers: workers.map((w) => ({ id: w.id, pool: pool.name, port: w.debug?.port ?? 0, debugpy: w.debug?.debugpy ?? 'debugpy' })) };
}

export async function stopDebuggingIn(pools: PythonPoolLike[], poolName: string | undefined): Promise<void> {
  const targets = poolName === undefined ? pools : [choosePool(pools, poolName, undefined)];
  await Promise.all(targets.map((p) => p.debugger.stop()));
}

export function dumpStackIn(pools: PythonPoolLike[], worker: number): Promise<StackReport> {
  for (const pool of pools) {
    const w = pool.workers.find((x) => x.id === worker && x.state !== 'exited');
    if (w) return pool.debugger.dumpStack(w);
  }
  throw new ServeStackError('CONTROL_UNKNOWN_WORKER', `no running Python worker has id ${worker}`, { hint: 'see `servestack status` for the ids' });
}
