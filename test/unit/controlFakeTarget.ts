// A small in-memory ControlTarget for testing the control channel without the real
// server: it keeps pools and workers, records every call and emits events as the real
// one does. Not a test file itself (no .test.ts).
import { ServeStackError } from '../../server/errors';
import type { ControlEvent, LogLine, PoolInfo, Snapshot, WorkerInfo } from '../../server/protocol';
import type { ControlTarget } from '../../server/control/target';
import type { Diagnostic } from '../../server/config/types';

export interface FakeTarget extends ControlTarget {
  calls: { name: string; args: unknown[] }[];
  emit(event: ControlEvent): void;
  log(text: string, extra?: Partial<LogLine>): void;
  listenerCount(): number;
  configText: string;
  stopped: boolean;
  /** Called by stop() after it has emitted `stopping`. */
  onStop?: () => void | Promise<void>;
}

export function createFakeTarget(dir = '/srv/app'): FakeTarget {
  const listeners = new Set<(e: ControlEvent) => void>();
  const logs: LogLine[] = [];
  let nextWorker = 1;
  const pools: PoolInfo[] = [{ name: 'web', kind: 'python', app: 'app:app', wanted: 2, state: 'running' }];
  const workers: WorkerInfo[] = [];
  const spawn = (pool: string): WorkerInfo => {
    const w: WorkerInfo = { id: nextWorker++, pool, pid: 40000 + nextWorker, state: 'idle', requests: 0, inFlight: 0, startedAt: Date.now() - 5000, rssBytes: 25 * 1024 * 1024, generation: 1 };
    workers.push(w);
    return w;
  };
  spawn('web');
  spawn('web');

  const findPool = (name: string | undefined): PoolInfo => {
    if (name === undefined) {
      if (pools.length === 1) return pools[0];
      throw new ServeStackError('CONTROL_UNKNOWN_POOL', `name a pool: ${pools.map((p) => p.name).join(', ')}`);
    }
    const p = pools.find((x) => x.name === name);
    if (!p) throw new ServeStackError('CONTROL_UNKNOWN_POOL', `no pool "${name}"; pools: ${pools.map((x) => x.name).join(', ')}`, { hint: 'see servestack status' });
    return p;
  };
  const findWorker = (id: number): WorkerInfo => {
    const w = workers.find((x) => x.id === id && x.state !== 'exited');
    if (!w) throw new ServeStackError('CONTROL_UNKNOWN_WORKER', `no worker ${id}`);
    return w;
  };

  const target: FakeTarget = {
    calls: [],
    configText: '{}',
    stopped: false,
    emit(event) {
      for (const l of listeners) l(event);
    },
    log(text, extra = {}) {
      const line: LogLine = { time: Date.now(), level: 'info', source: 'server', text, ...extra };
      logs.push(line);
      target.emit({ type: 'log', line });
    },
    listenerCount: () => listeners.size,
    snapshot(): Snapshot {
      return {
        protocol: 1,
        server: { pid: process.pid, version: '0.0.0-test', dir, url: 'http://127.0.0.1:8080', startedAt: Date.now() - 60_000 },
        pools: pools.map((p) => ({ ...p })),
        workers: workers.filter((w) => w.state !== 'exited').map((w) => ({ ...w })),
        routes: [{ path: '/', kind: 'pool', target: 'web', index: 0 }],
      };
    },
    async scale(pool, n) {
      target.calls.push({ name: 'scale', args: [pool, n] });
      const p = findPool(pool);
      p.wanted = n;
      let live = workers.filter((w) => w.pool === p.name && w.state !== 'exited');
      while (live.length < n) {
        const w = spawn(p.name);
        target.emit({ type: 'worker', worker: { ...w } });
        live = workers.filter((x) => x.pool === p.name && x.state !== 'exited');
      }
      for (const w of live.slice(n)) {
        w.state = 'exited';
        w.exitCode = 0;
        target.emit({ type: 'worker', worker: { ...w } });
      }
      target.emit({ type: 'pool', pool: { ...p } });
    },
    async reload(pool) {
      target.calls.push({ name: 'reload', args: [pool] });
      if (pool !== undefined) findPool(pool);
      target.log(`reloaded ${pool ?? 'every pool'}`);
    },
    async restartWorker(id) {
      target.calls.push({ name: 'restartWorker', args: [id] });
      const w = findWorker(id);
      w.state = 'exited';
      target.emit({ type: 'worker', worker: { ...w } });
      target.emit({ type: 'worker', worker: { ...spawn(w.pool) } });
    },
    async debugWorkers(options) {
      target.calls.push({ name: 'debugWorkers', args: [options] });
      const w = options.worker !== undefined ? findWorker(options.worker) : workers.find((x) => x.pool === findPool(options.pool).name && x.state !== 'exited')!;
      return { workers: [{ id: w.id, pool: w.pool, port: 5678, debugpy: 'debugpy (fake)' }] };
    },
    async stopDebugging(pool) {
      target.calls.push({ name: 'stopDebugging', args: [pool] });
      if (pool !== undefined) findPool(pool);
    },
    async dumpStack(id) {
      target.calls.push({ name: 'dumpStack', args: [id] });
      findWorker(id);
      return { pid: 1, threads: [], stuck: null };
    },
    async killWorker(id) {
      target.calls.push({ name: 'killWorker', args: [id] });
      const w = findWorker(id);
      w.state = 'exited';
      w.exitCode = null;
      target.emit({ type: 'worker', worker: { ...w } });
    },
    async applyConfigText(text) {
      target.calls.push({ name: 'applyConfigText', args: [text] });
      if (text === target.configText) return { applied: false, diagnostics: [] };
      try {
        JSON.parse(text);
      } catch (err) {
        const d: Diagnostic = { file: `${dir}/servestack.json`, line: 1, col: 1, endLine: 1, endCol: 2, offset: 0, length: 1, severity: 'error', code: 'CONFIG_SYNTAX', message: (err as Error).message };
        target.emit({ type: 'config', applied: false, diagnostics: [d] });
        return { applied: false, diagnostics: [d] };
      }
      target.configText = text;
      target.emit({ type: 'config', applied: true, diagnostics: [] });
      return { applied: true, diagnostics: [] };
    },
    async stop() {
      target.calls.push({ name: 'stop', args: [] });
      target.stopped = true;
      target.emit({ type: 'stopping' });
      await target.onStop?.();
    },
    recentLogs(n) {
      return logs.slice(-n);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return target;
}
