// What the control channel steers: the running server (server/main.ts implements it).
// Kept as an interface so the control server depends on no concrete module.
import type { ConfigApplyResult, ControlEvent, ControlResults, LogLine, Snapshot, StackReport } from '../protocol';
import type { DebugOptions } from '../pool/debug';
import type { Diagnostic } from '../config/types';
import type { RequestInspector } from './inspector';

export interface ControlTarget {
  snapshot(): Snapshot;
  /** pool undefined = the only pool, or an error naming the choices. */
  scale(pool: string | undefined, workers: number): Promise<void>;
  reload(pool?: string): Promise<void>;
  restartWorker(id: number): Promise<void>;
  killWorker(id: number): Promise<void>;
  /** Build and check in full; swap only when valid; identical text is a no-op; restart-only fields are reported. */
  applyConfigText(text: string): Promise<ConfigApplyResult>;
  stop(): Promise<void>;
  recentLogs(lines: number): LogLine[];
  /** The request inspector, when it is on (development only). */
  requestInspector?(): RequestInspector | undefined;
  /** Restart workers under debugpy (rolling); pool undefined = the only Python pool, or the pool of `worker`. */
  debugWorkers(options: DebugOptions & { pool?: string }): Promise<ControlResults['debugWorkers']>;
  /** Back to normal workers, rolling; pool undefined = every pool. */
  stopDebugging(pool?: string): Promise<void>;
  dumpStack(worker: number): Promise<StackReport>;
  /** Events to stream (worker, pool, routes, metrics, log, config, stopping). */
  onEvent(listener: (event: ControlEvent) => void): () => void;
}
