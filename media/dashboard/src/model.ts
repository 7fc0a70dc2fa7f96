// What the dashboard knows, built from control events alone (no DOM): the last minutes of
// metrics, each worker's figures at each sample, worker exits with their reasons, and the
// recent requests. Pure, so a plain Node test can feed it events.
import type { ControlEvent, MetricsSample, PoolInfo, RequestSummary, RouteInfo, RouteMetrics, Snapshot, WorkerInfo } from '../../../server/protocol';

/** Seconds of history the charts show. */
export const WINDOW_SECONDS = 300;
export const MAX_REQUESTS = 500;
export const MAX_EXITS = 50;

/** What the traffic and latency charts show: everything, one route, or one pool. */
export type Scope = { kind: 'all' } | { kind: 'route'; key: string } | { kind: 'pool'; key: string };

export interface WorkerExit {
  time: number;
  worker: number;
  pool: string;
  pid?: number;
  generation: number;
  reason: string;
}

interface WorkerTick {
  t: number;
  figures: Map<number, { cpu: number | null; rssMiB: number | null; requests: number; inFlight: number }>;
}

export function exitReason(w: WorkerInfo): string {
  const code = w.exitCode;
  if (code === null) return 'killed by a signal (a timeout, Kill Worker, or a crash)';
  if (code === undefined) return 'exited';
  if (code === 0) return 'stopped (reload, scale down, restart or max requests)';
  if (code === 3) return 'could not boot its runtime (exit code 3)';
  if (code === 4) return 'the app failed to load (exit code 4)';
  return `crashed (exit code ${code})`;
}

export class DashboardModel {
  server?: Snapshot['server'];
  readonly pools = new Map<string, PoolInfo>();
  readonly workers = new Map<number, WorkerInfo>();
  routes: RouteInfo[] = [];
  readonly samples: MetricsSample[] = [];
  private readonly ticks: WorkerTick[] = [];
  readonly exits: WorkerExit[] = [];
  readonly requests: RequestSummary[] = [];
  stopping = false;
  scope: Scope = { kind: 'all' };

  /** Applies one event; returns what changed, so the page redraws only that. */
  apply(event: ControlEvent): 'snapshot' | 'workers' | 'pools' | 'routes' | 'metrics' | 'requests' | 'stopping' | undefined {
    switch (event.type) {
      case 'snapshot':
        this.applySnapshot(event.snapshot);
        return 'snapshot';
      case 'worker': {
        const w = event.worker;
        if (w.state === 'exited') {
          if (this.workers.delete(w.id) || !this.exits.some((e) => e.worker === w.id)) {
            this.exits.push({ time: Date.now(), worker: w.id, pool: w.pool, pid: w.pid, generation: w.generation, reason: exitReason(w) });
            if (this.exits.length > MAX_EXITS) this.exits.shift();
          }
        } else this.workers.set(w.id, w);
        return 'workers';
      }
      case 'pool':
        this.pools.set(event.pool.name, event.pool);
        return 'pools';
      case 'routes':
        this.routes = event.routes;
        return 'routes';
      case 'metrics':
        this.addSample(event.metrics);
        return 'metrics';
      case 'requests':
        this.addRequests(event.requests);
        return 'requests';
      case 'stopping':
        this.stopping = true;
        return 'stopping';
      default:
        return undefined;
    }
  }

  applySnapshot(s: Snapshot): void {
    this.server = s.server;
    this.stopping = false;
    this.pools.clear();
    for (const p of s.pools) this.pools.set(p.name, p);
    this.workers.clear();
    for (const w of s.workers) if (w.state !== 'exited') this.workers.set(w.id, w);
    this.routes = s.routes;
  }

  addRequests(list: readonly RequestSummary[]): void {
    const known = new Set(this.requests.map((r) => r.id));
    for (const r of list) if (!known.has(r.id)) this.requests.push(r);
    this.requests.sort((a, b) => a.id - b.id);
    if (this.requests.length > MAX_REQUESTS) this.requests.splice(0, this.requests.length - MAX_REQUESTS);
  }

  private addSample(m: MetricsSample): void {
    this.samples.push(m);
    const figures: WorkerTick['figures'] = new Map();
    for (const w of this.workers.values()) {
      figures.set(w.id, {
        cpu: w.cpuPercent ?? null,
        rssMiB: w.rssBytes !== undefined ? Math.round((w.rssBytes / 1048576) * 10) / 10 : null,
        requests: w.requests,
        inFlight: w.inFlight,
      });
    }
    this.ticks.push({ t: m.time / 1000, figures });
    const oldest = m.time / 1000 - WINDOW_SECONDS;
    while (this.samples.length && this.samples[0].time / 1000 < oldest) this.samples.shift();
    while (this.ticks.length && this.ticks[0].t < oldest) this.ticks.shift();
  }

  /** The figures of one sample in the current scope (a route or pool without requests in that second: zeros). */
  private scoped(m: MetricsSample): { rps: number; status: RouteMetrics['status']; p50: number | null; p95: number | null; p99: number | null; queue: number } {
    const queueOf = (pool?: string) =>
      pool !== undefined ? m.pools[pool]?.queueDepth ?? 0 : Object.values(m.pools).reduce((n, p) => n + p.queueDepth, 0);
    const from = (r: RouteMetrics | undefined, queue: number) =>
      r && r.requests > 0
        ? { rps: r.rps, status: r.status, p50: r.p50Ms, p95: r.p95Ms ?? null, p99: r.p99Ms, queue }
        : { rps: 0, status: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, p50: null, p95: null, p99: null, queue };
    if (this.scope.kind === 'route') return from(m.routes[this.scope.key], queueOf());
    if (this.scope.kind === 'pool') return from(m.pools[this.scope.key], queueOf(this.scope.key));
    // Everything: the server's totals; latency from the busiest route (the sample has no overall histogram).
    const busiest = Object.values(m.routes).sort((a, b) => b.requests - a.requests)[0];
    const total = m.status['2xx'] + m.status['3xx'] + m.status['4xx'] + m.status['5xx'];
    return {
      rps: m.rps,
      status: m.status,
      p50: total > 0 && busiest ? busiest.p50Ms : null,
      p95: total > 0 && busiest ? busiest.p95Ms ?? null : null,
      p99: total > 0 && busiest ? busiest.p99Ms : null,
      queue: queueOf(),
    };
  }

  /** [time, requests/s, error rate %] */
  trafficData(): [number[], number[], (number | null)[]] {
    const t: number[] = [], rps: number[] = [], err: (number | null)[] = [];
    for (const m of this.samples) {
      const s = this.scoped(m);
      const total = s.status['2xx'] + s.status['3xx'] + s.status['4xx'] + s.status['5xx'];
      t.push(m.time / 1000);
      rps.push(s.rps);
      err.push(total > 0 ? Math.round(((s.status['5xx'] + s.status['4xx']) / total) * 1000) / 10 : 0);
    }
    return [t, rps, err];
  }

  /** [time, p50, p95, p99] in ms */
  latencyData(): [number[], (number | null)[], (number | null)[], (number | null)[]] {
    const t: number[] = [], p50: (number | null)[] = [], p95: (number | null)[] = [], p99: (number | null)[] = [];
    for (const m of this.samples) {
      const s = this.scoped(m);
      t.push(m.time / 1000);
      p50.push(s.p50);
      p95.push(s.p95);
      p99.push(s.p99);
    }
    return [t, p50, p95, p99];
  }

  /** [time, 2xx, 3xx, 4xx, 5xx] per second */
  statusData(): number[][] {
    const out: number[][] = [[], [], [], [], []];
    for (const m of this.samples) {
      const s = this.scoped(m);
      out[0].push(m.time / 1000);
      out[1].push(s.status['2xx']);
      out[2].push(s.status['3xx']);
      out[3].push(s.status['4xx']);
      out[4].push(s.status['5xx']);
    }
    return out;
  }

  /** [time, queue depth, requests waiting at busy workers (in flight beyond the first)] */
  queueData(): number[][] {
    const out: number[][] = [[], [], []];
    this.samples.forEach((m, i) => {
      const s = this.scoped(m);
      const tick = this.ticks[i];
      let waiting = 0;
      if (tick) {
        for (const [id, f] of tick.figures) {
          const w = this.workers.get(id);
          if (this.scope.kind === 'pool' && w && w.pool !== this.scope.key) continue;
          waiting += Math.max(0, f.inFlight - 1);
        }
      }
      out[0].push(m.time / 1000);
      out[1].push(s.queue);
      out[2].push(waiting);
    });
    return out;
  }

  /** Worker ids seen in the window, in order: one chart series each. */
  workerIds(): number[] {
    const ids = new Set<number>();
    for (const tick of this.ticks) for (const id of tick.figures.keys()) ids.add(id);
    return [...ids].sort((a, b) => a - b);
  }

  /** [time, per worker id...] of cpu % or RSS MiB */
  workerData(figure: 'cpu' | 'rssMiB', ids: readonly number[]): (number | null)[][] {
    const out: (number | null)[][] = [this.ticks.map((t) => t.t)];
    for (const id of ids) out.push(this.ticks.map((t) => t.figures.get(id)?.[figure] ?? null));
    return out;
  }

  /** Requests matching a filter: words that all appear in "METHOD url status worker route". */
  filteredRequests(filter: string): RequestSummary[] {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
    const list = words.length === 0
      ? this.requests
      : this.requests.filter((r) => {
          const text = `${r.method} ${r.url} ${r.status} ${r.workerId !== undefined ? `w${r.workerId}` : ''} ${r.pool ?? ''} ${r.route}`.toLowerCase();
          return words.every((w) => text.includes(w));
        });
    return [...list].reverse();
  }

  scopes(): { value: string; label: string }[] {
    const out = [{ value: 'all', label: 'All requests' }];
    for (const p of this.pools.values()) out.push({ value: `pool:${p.name}`, label: `Pool ${p.name}` });
    for (const r of this.routes) out.push({ value: `route:${r.path}`, label: `Route ${r.path}` });
    return out;
  }

  setScope(value: string): void {
    if (value.startsWith('pool:')) this.scope = { kind: 'pool', key: value.slice(5) };
    else if (value.startsWith('route:')) this.scope = { kind: 'route', key: value.slice(6) };
    else this.scope = { kind: 'all' };
  }
}
