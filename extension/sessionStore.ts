// One served folder's state as the editor knows it, in one place: what the server's
// control channel said (snapshot, then worker, pool, routes and metrics events) and where
// the process is in its life. The Workers and Routes views, the status bar and the
// dashboard webview all read this store; only the session (supervisor.ts) writes it.
// No vscode import: plain Node tests feed it events.
import type { ControlEvent, HttpsInfo, MetricsSample, PoolInfo, RouteInfo, Snapshot, WorkerInfo } from '../server/protocol';

export type SessionState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface Subscription { dispose(): void }

class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();
  readonly event = (listener: (value: T) => void): Subscription => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };
  fire(value: T): void {
    for (const l of [...this.listeners]) l(value);
  }
  clear(): void {
    this.listeners.clear();
  }
}

export class SessionStore {
  state: SessionState = 'stopped';
  url?: string;
  configFile?: string;
  serverPid?: number;
  startedAt?: number;
  readonly pools = new Map<string, PoolInfo>();
  readonly workers = new Map<number, WorkerInfo>();
  routes: RouteInfo[] = [];
  metrics?: MetricsSample;
  /** The server's HTTPS, when it serves any (the Workers view says when it is not trusted yet). */
  https?: HttpsInfo;

  private readonly changeEmitter = new Emitter<void>();
  private readonly poolFailureEmitter = new Emitter<PoolInfo>();
  private readonly eventEmitter = new Emitter<ControlEvent>();
  private readonly reportedFailures = new Set<string>();
  /** State, pools, workers, routes or metrics changed. */
  readonly onDidChange = this.changeEmitter.event;
  /** A pool's app cannot load: once per distinct failure of a pool while the session lives. */
  readonly onPoolFailure = this.poolFailureEmitter.event;
  /** Every control event, as the server sent it (the dashboard webview relays them). */
  readonly onEvent = this.eventEmitter.event;

  get isActive(): boolean {
    return this.state === 'starting' || this.state === 'running';
  }

  setState(state: SessionState): void {
    if (this.state === state) return;
    this.state = state;
    this.changeEmitter.fire();
  }

  /** A new start: forget what the previous server said. */
  reset(): void {
    this.reportedFailures.clear();
    this.clearServerState();
  }

  /** The server is gone: its pools, workers and figures with it. */
  clearServerState(): void {
    this.pools.clear();
    this.workers.clear();
    this.metrics = undefined;
    this.https = undefined;
    this.changeEmitter.fire();
  }

  applySnapshot(snapshot: Snapshot): void {
    this.url = snapshot.server.url || this.url;
    this.configFile = snapshot.server.configFile;
    this.https = snapshot.server.https;
    this.pools.clear();
    for (const p of snapshot.pools) {
      this.pools.set(p.name, p);
      this.checkPoolFailure(p);
    }
    this.workers.clear();
    for (const w of snapshot.workers) if (w.state !== 'exited') this.workers.set(w.id, w);
    this.routes = snapshot.routes;
    this.changeEmitter.fire();
  }

  applyEvent(event: ControlEvent): void {
    switch (event.type) {
      case 'snapshot':
        this.applySnapshot(event.snapshot);
        break;
      case 'worker':
        if (event.worker.state === 'exited') this.workers.delete(event.worker.id);
        else this.workers.set(event.worker.id, event.worker);
        this.changeEmitter.fire();
        break;
      case 'pool':
        this.pools.set(event.pool.name, event.pool);
        this.checkPoolFailure(event.pool);
        this.changeEmitter.fire();
        break;
      case 'routes':
        this.routes = event.routes;
        this.changeEmitter.fire();
        break;
      case 'metrics':
        this.metrics = event.metrics;
        this.changeEmitter.fire();
        break;
      default:
        break;
    }
    this.eventEmitter.fire(event);
  }

  workersOf(pool: string): WorkerInfo[] {
    return [...this.workers.values()].filter((w) => w.pool === pool).sort((a, b) => a.id - b.id);
  }

  /** Workers of the pool that are booted (idle or busy). */
  upWorkers(pool: string): number {
    return this.workersOf(pool).filter((w) => w.state === 'idle' || w.state === 'busy').length;
  }

  pythonPools(): PoolInfo[] {
    return [...this.pools.values()].filter((p) => p.kind === 'python');
  }

  /** How far the Python pools are from their wanted workers; `settled` once all are up or one cannot load. */
  readiness(): { up: number; wanted: number; settled: boolean } {
    const pools = this.pythonPools();
    const up = pools.reduce((n, p) => n + Math.min(this.upWorkers(p.name), p.wanted), 0);
    const wanted = pools.reduce((n, p) => n + p.wanted, 0);
    const failed = pools.some((p) => p.state === 'backoff');
    return { up, wanted, settled: failed || (this.state === 'running' && pools.every((p) => this.upWorkers(p.name) >= p.wanted)) };
  }

  private checkPoolFailure(pool: PoolInfo): void {
    if (!pool.failure) return;
    const key = `${pool.name}\0${pool.failure}`;
    if (this.reportedFailures.has(key)) return;
    this.reportedFailures.add(key);
    this.poolFailureEmitter.fire(pool);
  }

  dispose(): void {
    this.changeEmitter.clear();
    this.poolFailureEmitter.clear();
    this.eventEmitter.clear();
  }
}
