// The arbiter of one Python pool (Gunicorn's role). Desired state plus one reconcile
// step: exits, readiness, commands and timeouts record what happened and call
// reconcile(), which spawns to the wanted count or retires extras. Dispatch lives here
// too, because which worker may take a request depends on the same state.
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { WORKER_CONTRACT, type PoolFailure, type PoolInfo, type WorkerDebugInfo, type WorkerInfo } from '../protocol';
import type { PythonPoolConfig } from '../config/types';
import type { Logger } from '../log';
import { Backoff, CrashBudget } from './backoff';
import { PoolDebugger } from './debug';
import { readEnvFile } from './envFile';
import { requestHeadText } from './heads';
import { removeAt, WorkerProcess, type Job } from './worker';
import type { ResponseSink, Upstream, UpstreamCall, UpstreamFailure, UpstreamRequest, UpgradeOutcome } from '../upstream/types';
import type { Socket } from 'node:net';
import { WebSocketGateway, type WebSocketLimits } from './websocket';

export interface PoolEvents {
  onWorker(info: WorkerInfo): void;
  onPool(info: PoolInfo): void;
}

export interface PoolOptions {
  config: PythonPoolConfig;
  /** Interpreter when the pool names none: the editor's, --python, else python3. */
  defaultPython: string;
  runtimeScript: string;
  logger: Logger;
  events: PoolEvents;
  nextWorkerId(): number;
  queueSize: number;
  /** Requests a busy worker may hold beyond what it runs at once; 0 = strict one-at-a-time. */
  prefetch: number;
  /** limits.maxWebSocketMessageSize and limits.bufferSize, for WebSocket sessions. */
  webSocketLimits: WebSocketLimits;
}

type Status = PoolInfo['state'];
const SWEEP_MS = 250;
/** Between asking a worker for its stack and killing it: longer than its watcher's tick. */
const STACK_DUMP_GRACE_MS = 1000;
/** How long a retiring worker may finish its requests when the pool has no timeout. */
const DRAIN_WITHOUT_TIMEOUT_MS = 60000;

let lastRequestId = 0;
function nextRequestId(): number {
  lastRequestId = lastRequestId >= 0xffffffff ? 1 : lastRequestId + 1;
  return lastRequestId;
}

export class Pool implements Upstream {
  config: PythonPoolConfig;
  wanted: number;
  status: Status = 'stopped';
  failure: string | undefined;
  /** `failure` as data (code, message, file, line), set together with it. */
  failureDetail: PoolFailure | undefined;
  readonly workers: WorkerProcess[] = [];
  private readonly queue: Job[] = [];
  private generation = 1;
  private surge = 0;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private readonly backoff = new Backoff();
  private readonly crashBudget = new CrashBudget();
  private retryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastLoggedFailure: string | undefined;
  private readonly readyWaiters = new Map<WorkerProcess, (ok: boolean) => void>();
  private readonly exitWaiters = new Map<WorkerProcess, () => void>();
  private readonly timedOut = new Set<WorkerProcess>();
  private sweeps = 0;
  private readonly serviceTime = new ServiceTime();
  /** What the workers reported for interface "auto". */
  private detectedInterface: 'wsgi' | 'asgi' | undefined;
  /** limits.queueSize, live: a config change sets it for the next request that would wait. */
  private queueSize: number;
  private readonly webSockets: WebSocketGateway;
  /** Debugged workers, pins and stack reports (pool/debug.ts). */
  readonly debugger: PoolDebugger;

  constructor(private readonly options: PoolOptions) {
    this.debugger = new PoolDebugger(this, options.logger);
    this.config = options.config;
    this.wanted = options.config.workers;
    this.queueSize = options.queueSize;
    this.webSockets = new WebSocketGateway(this.webSocketHooks(), options.webSocketLimits);
  }

  setWebSocketLimits(limits: WebSocketLimits): void {
    this.webSockets.setLimits(limits);
  }

  /** An ASGI app's websocket scope (server/pool/websocket.ts); a WSGI pool answers 501 with the reason. */
  upgrade(request: UpstreamRequest, socket: Socket, head: Buffer, done?: (outcome: UpgradeOutcome) => void): void {
    this.webSockets.open(request, socket, head, done);
  }

  private webSocketHooks(): ConstructorParameters<typeof WebSocketGateway>[0] {
    return {
      name: this.name,
      interface: () => this.detectedInterface ?? this.config.interface,
      appName: () => this.config.app,
      pickWorker: () => {
        let best: WorkerProcess | undefined;
        for (const w of this.workers) {
          if (!w.accepting || w.interface !== 'asgi' || w.inFlight >= w.capacity) continue;
          if (!best || w.inFlight < best.inFlight) best = w;
        }
        return best;
      },
      refusal: () => {
        if (this.status === 'stopped') return 'the server is shutting down';
        if (!this.workers.some((w) => w.state !== 'exited') && this.failure) return this.failure;
        if (this.workers.some((w) => w.state === 'booting' && !w.retiring)) return undefined;
        return `every worker of pool '${this.name}' holds as many connections as it takes`;
      },
      timeoutMs: () => this.config.timeoutMs,
      nextId: nextRequestId,
      changed: (w) => this.emitWorker(w),
      warn: (text, workerId) => this.options.logger.warn('server', text, { pool: this.name, ...(workerId === undefined ? {} : { workerId }) }),
    };
  }

  /** Requests already waiting stay queued when the bound drops below them; new ones get 503 until it frees. */
  setQueueSize(queueSize: number): void {
    this.queueSize = queueSize;
  }

  get name(): string {
    return this.config.name;
  }

  /** Sync (WSGI) workers are held by a slow upload, so their routes read bodies first; ASGI reads as it goes. */
  get buffersRequestsByDefault(): boolean {
    return (this.detectedInterface ?? this.config.interface) !== 'asgi';
  }

  start(): void {
    this.status = 'running';
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
    this.reconcile();
  }

  info(): PoolInfo {
    return { name: this.name, kind: 'python', app: this.config.app, wanted: this.wanted, state: this.status, failure: this.failure, failureDetail: this.failure ? this.failureDetail : undefined };
  }

  workerInfos(): WorkerInfo[] {
    return this.workers.map((w) => w.info());
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  // ── dispatch ──────────────────────────────────────────────────────────────────

  submit(request: UpstreamRequest, sink: ResponseSink): UpstreamCall {
    const job: Job = {
      request,
      headText: requestHeadText(request),
      sink,
      bodyReader: undefined,
      worker: undefined,
      requestId: nextRequestId(),
      enqueuedAt: Date.now(),
      startedAt: 0,
      responseStarted: false,
      heldStatus: 0,
      heldHeaders: undefined,
      heldBody: undefined,
      heldMore: undefined,
      revoking: false,
      takenBack: 0,
      done: false,
    };
    this.enqueue(job);
    return new PoolCall(this, job);
  }

  private enqueue(job: Job): void {
    if (this.status === 'stopped') return this.failJob(job, { code: 'UNAVAILABLE', message: 'the server is shutting down' });
    // First come, first served: a job jumps no queue (taken-back jobs wait at its head).
    if (this.queue.length === 0 && this.assign(job, true, false)) return;
    if (!this.workers.some((w) => w.state !== 'exited') && this.failure) {
      return this.failJob(job, this.unavailable());
    }
    if (this.queue.length >= this.queueSize) {
      return this.failJob(job, { code: 'OVERLOADED', message: `every worker of pool '${this.name}' is busy and ${this.queue.length} requests already wait` });
    }
    this.queue.push(job);
    if (this.queue.length > 1) this.pump();
  }

  /** The client went away before the response completed (called by the job's PoolCall). */
  cancel(job: Job): void {
    if (job.done) return;
    job.done = true;
    job.bodyReader?.close();
    job.bodyReader = undefined;
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    job.worker?.abort(job.requestId);
  }

  private failJob(job: Job, failure: UpstreamFailure): void {
    job.done = true;
    job.bodyReader?.close();
    job.bodyReader = undefined;
    job.sink.fail(failure);
  }

  private unavailable(): UpstreamFailure {
    const at = this.failureDetail;
    return {
      code: 'UNAVAILABLE',
      message: this.failure ?? `no worker of pool '${this.name}' is available`,
      ...(at?.file ? { file: at.file } : {}),
      ...(at?.line ? { line: at.line } : {}),
    };
  }

  /**
   * Hands the job to the least-busy worker with a free slot. With prefetch, a busy worker
   * may hold it, but never one whose running request has outlived the pool's recent
   * service times: a fast request must not wait behind a slow one.
   */
  private assign(job: Job, allowPrefetch: boolean, queued: boolean): boolean {
    const pinned = this.debugger.pinnedWorker(job.request);
    if (pinned) {
      // Pinned to the debugged worker: only its free slot, never prefetched (no take-back ping-pong).
      if (!pinned.accepting || pinned.inFlight >= pinned.capacity) return false;
      pinned.assign(job);
      return true;
    }
    let best: WorkerProcess | undefined;
    for (const w of this.workers) {
      if (!w.accepting || w.inFlight >= w.capacity) continue;
      if (!best || w.inFlight < best.inFlight) best = w;
    }
    if (!best && allowPrefetch && this.options.prefetch > 0 && !job.request.body) {
      const now = Date.now();
      const depth = this.prefetchDepth(queued);
      for (const w of this.workers) {
        if (!w.accepting || w.interface === 'asgi' || w.debug?.paused || w.inFlight >= w.capacity + depth || this.isStuck(w, now)) continue;
        if (!best || w.inFlight < best.inFlight) best = w;
      }
    }
    if (!best) return false;
    best.assign(job);
    return true;
  }

  /** How deep busy workers may be prefetched now (prefetchDepth), counting `job` once whether it waits in the queue or not. */
  private prefetchDepth(queued: boolean): number {
    let outstanding = this.queue.length + (queued ? 0 : 1);
    let accepting = 0;
    for (const w of this.workers) {
      outstanding += w.inFlight;
      if (w.accepting) accepting++;
    }
    return prefetchDepth(outstanding, accepting, this.options.prefetch);
  }

  /** Every running slot of `w` holds a request older than the pool's recent service times. */
  private isStuck(w: WorkerProcess, now: number): boolean {
    return this.runningFor(w, this.serviceTime.slowAfterMs(), now);
  }

  /** Every slot of `w` runs a request that started more than `ms` ago. */
  private runningFor(w: WorkerProcess, ms: number, now: number): boolean {
    for (let i = 0; i < Math.min(w.capacity, w.jobs.length); i++) {
      const started = w.jobs[i].startedAt;
      if (!started || now - started <= ms) return false;
    }
    return w.jobs.length >= w.capacity;
  }

  /**
   * Moves queued jobs to workers, then takes back prefetched jobs that would wait: those
   * behind a request that has run long (when another worker is not stuck), and, for a
   * worker with a free slot and nothing waiting at it, the longest-waiting one elsewhere.
   */
  private pump(): void {
    let at = 0;
    while (this.queue.length > at) {
      const job = this.queue[at];
      if (job.done) {
        removeAt(this.queue, at);
        continue;
      }
      // A job taken back twice waits for a free slot: no ping-pong between busy workers.
      if (!this.assign(job, job.takenBack < 2, true)) {
        // A job pinned to a paused debugged worker must not hold up the others.
        if (this.debugger.pinnedWorker(job.request)) {
          at++;
          continue;
        }
        break;
      }
      removeAt(this.queue, at);
    }
    if (this.options.prefetch === 0) return;
    this.rescueStuck();
    if (this.queue.length > 0) return;
    const now = Date.now();
    for (const free of this.workers) {
      if (!free.accepting || free.inFlight >= free.capacity) continue;
      let holder: WorkerProcess | undefined;
      let most = 0;
      for (const w of this.workers) {
        // Only from behind a request that has run a typical service time already: one
        // that has just begun ends about as soon as the take-back would, and under load
        // that turned into a Revoke (and a woken control thread) for nearly every request.
        if (w === free || !this.runningFor(w, this.serviceTime.typicalMs(), now)) continue;
        const waiting = countWaiting(w);
        if (waiting > most) {
          most = waiting;
          holder = w;
        }
      }
      if (!holder) return;
      holder.revoke(waitingJobs(holder)[0]);
    }
  }

  /** Requests parked behind a long-running one go back to the queue, for a worker that will run them sooner. */
  private rescueStuck(): void {
    const now = Date.now();
    let stuck: WorkerProcess[] | undefined;
    let healthy = false;
    for (const w of this.workers) {
      if (!w.accepting) continue;
      if (this.isStuck(w, now)) (stuck ??= []).push(w);
      else healthy = true;
    }
    if (!stuck || !healthy) return;
    for (const w of stuck) for (const job of waitingJobs(w)) w.revoke(job);
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────

  /** The one reconcile step: spawn to the wanted count, retire extras. */
  reconcile(): void {
    if (this.status === 'stopped') return;
    if (this.retryTimer) return; // backing off: the timer calls us again
    const current = this.workers.filter((w) => !w.retiring);
    const target = this.wanted + this.surge;
    for (let n = current.length; n < target; n++) this.spawnWorker();
    if (current.length > target) {
      const extras = [...current]
        .sort((a, b) => a.generation - b.generation || stateRank(a) - stateRank(b) || a.inFlight - b.inFlight)
        .slice(0, current.length - target);
      for (const w of extras) this.retire(w);
    }
  }

  scale(workers: number): void {
    this.wanted = Math.max(1, Math.floor(workers));
    this.options.logger.info('server', `pool '${this.name}': scaling to ${this.wanted} worker${this.wanted === 1 ? '' : 's'}`, { pool: this.name });
    this.emitPool();
    this.reconcile();
  }

  /**
   * Rolling reload: one fresh worker up and ready before each old one drains, so no
   * request fails. Reloads asked for while one runs fold into one more pass.
   */
  reload(config?: PythonPoolConfig): Promise<void> {
    if (config) {
      this.config = config;
      this.wanted = config.workers;
    }
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          try {
            await this.reloadOnce();
          } catch (error) {
            // A save that came while this pass failed (the fix, often) still gets its pass.
            if (!this.reloadAgain || this.status === 'stopped') throw error;
            this.options.logger.error('server', (error as Error).message, { pool: this.name });
          }
        } while (this.reloadAgain && this.status !== 'stopped');
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    this.generation++;
    const generation = this.generation;
    this.options.logger.info('server', `pool '${this.name}': reloading (generation ${generation})`, { pool: this.name });
    this.cancelBackoff();
    const old = this.workers.filter((w) => !w.retiring && w.generation < generation);
    try {
      for (const w of old) {
        if (this.status === 'stopped') return;
        this.surge = 1;
        const fresh = this.spawnWorker(this.debugger.carryOver(w));
        const ok = await new Promise<boolean>((resolve) => this.readyWaiters.set(fresh, resolve));
        if (!ok) {
          throw new Error(`reload of pool '${this.name}' stopped: ${this.failure ?? 'a new worker exited before it was ready'}; the running workers keep serving`);
        }
        this.surge = 0;
        if (!w.retiring) this.retire(w);
      }
    } finally {
      this.surge = 0;
      this.reconcile();
    }
    this.options.logger.info('server', `pool '${this.name}': reload complete`, { pool: this.name });
  }

  /** A fresh worker (under debugpy when `debug` is set) up and ready, then `old` retires: rolling, no request fails. */
  replaceWorker(old: WorkerProcess | undefined, debug?: WorkerDebugInfo): Promise<WorkerProcess | undefined> {
    if (this.status === 'stopped') return Promise.resolve(undefined);
    this.surge++;
    const fresh = this.spawnWorker(debug);
    return new Promise((resolve) => {
      // Called inside onReady/onExit, before their reconcile: the surge ends first.
      this.readyWaiters.set(fresh, (ok) => {
        this.surge--;
        if (ok && old && !old.retiring) this.retire(old);
        resolve(ok ? fresh : undefined);
      });
    });
  }

  python(): string {
    return resolvePython(this.config.python ?? this.options.defaultPython, this.config.cwd);
  }

  restartWorker(id: number): boolean {
    const w = this.workers.find((x) => x.id === id && !x.retiring);
    if (!w) return false;
    this.retire(w);
    this.reconcile();
    return true;
  }

  killWorker(id: number): boolean {
    const w = this.workers.find((x) => x.id === id && x.state !== 'exited');
    if (!w) return false;
    this.options.logger.warn('server', `worker ${id} (pid ${w.pid}) killed on request`, { pool: this.name, workerId: id });
    w.kill();
    return true;
  }

  /** Stop taking requests, let in-flight ones finish within graceMs, then end every worker. */
  async stop(graceMs: number): Promise<void> {
    this.status = 'stopped';
    this.cancelBackoff();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const job of this.queue.splice(0)) if (!job.done) this.failJob(job, { code: 'UNAVAILABLE', message: 'the server is shutting down' });
    // WebSockets share the stop's deadline: half of it to end by themselves, then close 1001.
    this.webSockets.closeAll(Math.min(graceMs / 2, this.config.timeoutMs > 0 ? this.config.timeoutMs : DRAIN_WITHOUT_TIMEOUT_MS));
    const live = this.workers.filter((w) => w.state !== 'exited');
    const exits = live.map((w) => new Promise<void>((resolve) => this.exitWaiters.set(w, resolve)));
    for (const w of live) w.askToStop();
    const deadline = setTimeout(() => {
      for (const w of this.workers) if (w.state !== 'exited') w.kill();
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(deadline);
    this.emitPool();
  }

  private retire(w: WorkerProcess): void {
    // Jobs it holds but has not started go back to the queue first.
    w.jobs.forEach((job, i) => {
      if (i >= w.capacity && !job.revoking) w.revoke(job);
    });
    w.askToStop();
    this.emitWorker(w);
    // Its WebSockets get the pool's timeout to end by themselves, then close 1001; the kill waits killGraceMs longer.
    this.webSockets.drain(w, this.config.timeoutMs > 0 ? this.config.timeoutMs : DRAIN_WITHOUT_TIMEOUT_MS);
    const drainMs = (this.config.timeoutMs > 0 ? this.config.timeoutMs : DRAIN_WITHOUT_TIMEOUT_MS) + WORKER_CONTRACT.killGraceMs;
    const deadline = setTimeout(() => {
      if (w.state !== 'exited') {
        this.options.logger.warn('server', `worker ${w.id} (pid ${w.pid}) did not finish within ${drainMs / 1000}s of being asked to stop; killing it`, { pool: this.name, workerId: w.id });
        w.kill();
      }
    }, drainMs);
    deadline.unref();
  }

  private spawnWorker(debug?: WorkerDebugInfo): WorkerProcess {
    const id = this.options.nextWorkerId();
    const cfg = this.config;
    const python = resolvePython(cfg.python ?? this.options.defaultPython, cfg.cwd);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(cfg.envFile ? readEnvFile(cfg.envFile, (msg) => this.options.logger.warn('config', msg, { pool: this.name })) : {}),
      ...cfg.env,
      PYTHONUNBUFFERED: '1',
      SERVESTACK_WORKER_ID: String(id),
      SERVESTACK_POOL: this.name,
    };
    const w = new WorkerProcess(
      {
        id,
        pool: this.name,
        generation: this.generation,
        python,
        script: this.options.runtimeScript,
        args: ['--app', cfg.app, '--interface', cfg.interface, '--cwd', cfg.cwd, '--threads', String(cfg.threads), '--worker-id', String(id), ...this.debugger.workerArgs(debug)],
        cwd: cfg.cwd,
        env,
        debug,
      },
      {
        onReady: (worker) => this.onReady(worker),
        onJobDone: (worker, job) => {
          if (job.startedAt) this.serviceTime.record(Date.now() - job.startedAt);
          // Gunicorn's max_requests: a fresh worker replaces one that served its share.
          if (this.config.maxRequests > 0 && worker.requests >= this.config.maxRequests && !worker.retiring) {
            this.options.logger.info('server', `worker ${worker.id} served ${worker.requests} requests (maxRequests); replacing it`, { pool: this.name, workerId: worker.id });
            this.retire(worker);
            this.reconcile();
          }
          this.pump();
        },
        onRevoked: (_worker, job) => {
          if (job.done) return;
          job.takenBack++;
          job.worker = undefined;
          // A fresh id: a stale copy still unread in the old worker's channel can never
          // be mistaken for this one (the worker drops it by its old id).
          job.requestId = nextRequestId();
          // Back in its place by arrival: first come, first served.
          let at = 0;
          while (at < this.queue.length && this.queue[at].enqueuedAt <= job.enqueuedAt) at++;
          this.queue.splice(at, 0, job);
          this.pump();
        },
        onExit: (worker, code, signal) => this.onExit(worker, code, signal),
        onOutput: (worker, _stream, line) => this.options.logger.info('worker', line, { workerId: worker.id, pool: this.name }),
        onSpawnError: (worker, error) => this.onSpawnError(worker, python, error),
        onDebugFrame: (worker, type, token, payload) => this.debugger.onFrame(worker, type, token, payload),
      },
    );
    w.lastTimeout = this.debugger.lastTimeout;
    this.workers.push(w);
    this.emitWorker(w);
    return w;
  }

  private onReady(w: WorkerProcess): void {
    if (w.interface) this.detectedInterface = w.interface;
    this.options.logger.info('server', `worker ${w.id} ready (pid ${w.pid})`, { pool: this.name, workerId: w.id });
    this.debugger.onReady(w);
    this.backoff.reset();
    if (this.failure) this.options.logger.info('server', `pool '${this.name}': the app loads again`, { pool: this.name });
    this.failure = undefined;
    this.failureDetail = undefined;
    this.lastLoggedFailure = undefined;
    if (this.status === 'backoff') this.status = 'running';
    this.readyWaiters.get(w)?.(true);
    this.readyWaiters.delete(w);
    this.emitWorker(w);
    this.emitPool();
    this.pump();
    this.webSockets.pump();
  }

  private onSpawnError(w: WorkerProcess, python: string, error: Error): void {
    const code = (error as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT'
      ? `the Python interpreter '${python}' was not found; set "python" in the pool of servestack.json, pass --python, or install python3 [PYTHON_NOT_FOUND]`
      : `could not start '${python}': ${error.message} [PYTHON_NOT_FOUND]`;
    this.failure = message;
    this.failureDetail = { code: 'PYTHON_NOT_FOUND', message };
    // A failed spawn never emits 'exit' on every platform; settle it here once.
    if (w.state !== 'exited') {
      w.state = 'exited';
      this.onExit(w, null, null);
    }
  }

  private onExit(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const index = this.workers.indexOf(w);
    if (index < 0) return; // already settled (spawn error, then exit)
    this.workers.splice(index, 1);
    const timedOut = this.timedOut.delete(w);
    this.settleUnfinished(w, timedOut);
    this.exitWaiters.get(w)?.();
    this.exitWaiters.delete(w);
    this.readyWaiters.get(w)?.(false);
    this.readyWaiters.delete(w);
    this.emitWorker(w);

    if (this.status === 'stopped') return;
    if (w.loadFailure || code === WORKER_CONTRACT.exitAppLoadFailed) {
      this.onLoadFailure(w);
    } else if (this.failure && w.pid === undefined) {
      this.logFailureOnce(this.failure);
      this.scheduleRetry();
    } else if (!w.retiring) {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.options.logger.error('server', `worker ${w.id} (pid ${w.pid}) ${how}; starting a new one`, { pool: this.name, workerId: w.id });
      if (this.crashBudget.record()) {
        this.failure = `workers of pool '${this.name}' keep crashing (more than 5 in 10 s)`;
        this.failureDetail = { code: 'WORKER_CRASH_LOOP', message: this.failure };
        this.logFailureOnce(this.failure);
        this.scheduleRetry();
      }
    }
    this.reconcile();
    this.failQueueWhileBackingOff();
    this.pump();
    this.webSockets.pump();
  }

  private onLoadFailure(w: WorkerProcess): void {
    const f = w.loadFailure;
    const where = f?.file ? `${f.file}${f.line ? `:${f.line}` : ''}: ` : '';
    this.failure = `the app '${this.config.app}' could not be loaded: ${where}${f?.message ?? 'the worker exited with code 4'}`;
    this.failureDetail = { code: 'APP_LOAD_FAILED', message: f?.message ?? 'the worker exited with code 4', file: f?.file ?? undefined, line: f?.line ?? undefined };
    const text = `${this.failure} [APP_LOAD_FAILED] — fix the error and save; ServeStack retries with back-off`;
    // Every worker of the pool fails the same way: the traceback reaches the log once.
    if (this.lastLoggedFailure !== text && f?.traceback) {
      this.options.logger.error('worker', f.traceback.trimEnd(), { pool: this.name, workerId: w.id });
    }
    this.logFailureOnce(text);
    this.scheduleRetry();
  }

  private logFailureOnce(text: string): void {
    if (this.lastLoggedFailure === text) return;
    this.lastLoggedFailure = text;
    this.options.logger.error('server', text, { pool: this.name });
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    if (!this.workers.some((w) => w.accepting)) this.status = 'backoff';
    const delay = this.backoff.fail();
    this.options.logger.debug('server', `pool '${this.name}': next start attempt in ${delay / 1000}s`, { pool: this.name });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.reconcile();
    }, delay);
    this.retryTimer.unref();
    this.emitPool();
  }

  /** Nothing can serve the queue during a back-off: answer it rather than let it wait. */
  private failQueueWhileBackingOff(): void {
    if (!this.retryTimer || this.workers.some((w) => w.state !== 'exited')) return;
    for (const job of this.queue.splice(0)) if (!job.done) this.failJob(job, this.unavailable());
  }

  private cancelBackoff(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.backoff.reset();
  }

  /** Jobs a dead worker held: the running ones fail, the ones it never started are queued again. */
  private settleUnfinished(w: WorkerProcess, timedOut: boolean): void {
    const jobs = w.takeUnfinishedJobs();
    const requeue: Job[] = [];
    jobs.forEach((job, i) => {
      if (job.done) return;
      if (i < w.capacity || job.responseStarted || job.request.body) {
        const how = `worker ${w.id} (pid ${w.pid}) exited before it ${job.responseStarted ? 'finished its answer' : 'answered'}`;
        this.failJob(job, { code: job.responseStarted ? 'BROKEN' : timedOut ? 'TIMEOUT' : 'LOST', message: how });
      } else {
        job.revoking = false;
        job.worker = undefined;
        job.requestId = nextRequestId();
        requeue.push(job);
      }
    });
    this.queue.unshift(...requeue);
  }

  // ── timeouts, heartbeats, memory ──────────────────────────────────────────────

  private sweep(): void {
    const now = Date.now();
    for (const w of this.workers) {
      // Paused is not hung: a debugged worker is never timed out, nor killed for silence.
      if (w.state === 'exited' || this.timedOut.has(w) || w.debug) continue;
      for (let i = 0; i < Math.min(w.capacity, w.jobs.length); i++) {
        const job = w.jobs[i];
        if (this.config.timeoutMs > 0 && job.startedAt && !job.done && now - job.startedAt > this.config.timeoutMs) {
          this.timeoutWorker(w, job, now);
          break;
        }
      }
      if (!this.timedOut.has(w) && w.state !== 'booting' && now - w.lastHeartbeat > WORKER_CONTRACT.heartbeatTimeoutMs) {
        this.options.logger.error('server', `worker ${w.id} (pid ${w.pid}) sent no heartbeat for ${WORKER_CONTRACT.heartbeatTimeoutMs / 1000}s; replacing it`, { pool: this.name, workerId: w.id });
        this.timedOut.add(w);
        w.dumpStack();
        setTimeout(() => w.kill(), 500).unref();
      }
    }
    if (this.options.prefetch > 0) this.rescueStuck();
    if (++this.sweeps % 8 === 0) void this.sampleMemory();
  }

  private timeoutWorker(w: WorkerProcess, job: Job, now: number): void {
    this.timedOut.add(w);
    const seconds = ((now - job.startedAt) / 1000).toFixed(1);
    this.options.logger.error(
      'server',
      `${job.request.method} ${job.request.path} ran ${seconds}s, past the pool's timeout of ${this.config.timeoutMs / 1000}s; answering 504 and replacing worker ${w.id} (pid ${w.pid}). Its Python stack follows.`,
      { pool: this.name, workerId: w.id },
    );
    this.failJob(job, { code: job.responseStarted ? 'BROKEN' : 'TIMEOUT', message: `the app did not answer within ${this.config.timeoutMs / 1000}s` });
    w.retiring = true;
    w.jobs.forEach((other, i) => {
      if (i >= w.capacity && !other.revoking) w.revoke(other);
    });
    const before = new Set(this.workers);
    this.reconcile();
    w.dumpStack(this.debugger.timeoutToken(w, this.workers.filter((x) => !before.has(x))));
    // The worker's control thread writes the dump; give it a moment, then kill.
    setTimeout(() => w.kill(), STACK_DUMP_GRACE_MS).unref();
  }

  private async sampleMemory(): Promise<void> {
    if (process.platform !== 'linux') return;
    await Promise.all(
      this.workers.map(async (w) => {
        if (!w.pid || w.state === 'exited') return;
        try {
          const statm = await readFile(`/proc/${w.pid}/statm`, 'utf8');
          w.rssBytes = Number(statm.split(' ')[1]) * 4096;
        } catch {
          // the process exited between the check and the read; its exit event follows
        }
      }),
    );
  }

  emitWorker(w: WorkerProcess): void {
    this.options.events.onWorker(w.info());
  }
  private emitPool(): void {
    this.options.events.onPool(this.info());
  }
}

/**
 * The pool's recent service times: a request running several times longer than the
 * median of the last 64 is "long", and nothing is prefetched behind it. The median, not
 * the mean: a few slow requests must not make every request look fast.
 */
export class ServiceTime {
  private readonly ring = new Float64Array(64);
  private count = 0;
  private thresholdMs = 5;
  private medianMs = 1;

  record(ms: number): void {
    this.ring[this.count % this.ring.length] = ms;
    this.count++;
    if (this.count % 16 === 0 || this.count < 16) {
      const n = Math.min(this.count, this.ring.length);
      const sorted = this.ring.slice(0, n).sort(); // a typed array sorts numerically, natively
      this.medianMs = sorted[n >> 1];
      this.thresholdMs = Math.max(3 * this.medianMs, 5);
    }
  }

  /**
   * 3× the median, never under 5 ms: under load the front reads a worker's answer a few
   * milliseconds late (its event loop is busy, the cores are shared), and at a 3 ms floor
   * that lag alone made about 2.5 % of hello requests at c=64 look stuck and taken back.
   */
  slowAfterMs(): number {
    return this.thresholdMs;
  }

  /** The median, never under 2 ms (the clock's grain is 1 ms; below 2 the same lag sent Revokes for nothing). */
  typicalMs(): number {
    return Math.max(this.medianMs, 2);
  }
}

/** The proxy's handle on one submitted job (one object, not three closures, per request). */
class PoolCall implements UpstreamCall {
  constructor(private readonly pool: Pool, private readonly job: Job) {}
  cancel(): void {
    this.pool.cancel(this.job);
  }
  pause(): void {
    this.job.worker?.pause(this.job.requestId);
  }
  resume(): void {
    this.job.worker?.resume(this.job.requestId);
  }
}

/** Jobs a worker holds but has not started, oldest first, not already being taken back. */
function waitingJobs(w: WorkerProcess): Job[] {
  return w.jobs.filter((_, i) => isWaiting(w, i));
}

/** waitingJobs(w).length, without the list. */
function countWaiting(w: WorkerProcess): number {
  let count = 0;
  for (let i = w.capacity; i < w.jobs.length; i++) if (isWaiting(w, i)) count++;
  return count;
}

/** Whether the worker's i-th job waits behind its running ones and can still be taken back. */
function isWaiting(w: WorkerProcess, i: number): boolean {
  return i >= w.capacity && !w.jobs[i].revoking;
}

function stateRank(w: WorkerProcess): number {
  return w.state === 'booting' ? 0 : w.state === 'idle' ? 1 : 2;
}

/** A relative interpreter path (".venv/bin/python") is relative to the workspace folder. */
export function resolvePython(python: string, cwd: string): string {
  if (path.isAbsolute(python) || !/[\\/]/.test(python)) return python;
  return path.resolve(cwd, python);
}

/** The fraction of a worker's fair share that prefetch commits to it ahead of time (1/4). */
const PREFETCH_SHARE_DIVISOR = 4;
/** Two waiting, so a worker has its next request in hand even while an answer and a new request cross (a depth of 1 lost 5 % at 16 connections). */
const MIN_PREFETCH = 2;

/**
 * How many requests a busy worker may hold beyond its capacity: a quarter of its fair
 * share of the requests the pool has now (queued or at a worker), at least 2, at most
 * `max` (--prefetch). A prefetched request waits out whatever stalls its worker (the
 * scheduler gave the core to another process; a GC), and a request handed out at once
 * cannot go to the worker that gets free first. At 16 connections on 2 workers a depth
 * of 8 put every request at a worker, and a 1–5 ms stall of one held 8: p99 5.25 against
 * NGINX → Gunicorn's 4.50 ms; a depth of 2 gave 4.21 (and 1.64× the throughput against
 * 1.88×). At 64 connections the full 8 is needed for throughput (1.73× against 1.40× at
 * 2), and the tail there is the queue's anyway (bench/RESULTS.md, 2026-12-04 20:40–21:10).
 */
export function prefetchDepth(outstanding: number, acceptingWorkers: number, max: number): number {
  if (max <= 0) return 0;
  const share = outstanding / Math.max(1, acceptingWorkers);
  return Math.min(max, Math.max(MIN_PREFETCH, Math.ceil(share / PREFETCH_SHARE_DIVISOR)));
}
