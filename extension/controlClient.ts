// The control channel as VS Code events: one EventEmitter per kind of server event, and
// typed requests. The transport (WebSocket, token, reconnects) is server/control/client.ts.
import * as vscode from 'vscode';
import { connectControl } from '../server/control/client';
import type {
  ConfigApplyResult,
  ControlEvent,
  ControlRequest,
  ControlResults,
  LogLine,
  MetricsSample,
  PoolInfo,
  RouteInfo,
  Snapshot,
  WorkerInfo,
} from '../server/protocol';

type Transport = Awaited<ReturnType<typeof connectControl>>;

export class ControlClient implements vscode.Disposable {
  private readonly snapshotEmitter = new vscode.EventEmitter<Snapshot>();
  private readonly workerEmitter = new vscode.EventEmitter<WorkerInfo>();
  private readonly poolEmitter = new vscode.EventEmitter<PoolInfo>();
  private readonly routesEmitter = new vscode.EventEmitter<RouteInfo[]>();
  private readonly metricsEmitter = new vscode.EventEmitter<MetricsSample>();
  private readonly logEmitter = new vscode.EventEmitter<LogLine>();
  private readonly configEmitter = new vscode.EventEmitter<ConfigApplyResult>();
  private readonly stoppingEmitter = new vscode.EventEmitter<void>();
  private readonly eventEmitter = new vscode.EventEmitter<ControlEvent>();

  /** A full picture: on connect, and whenever the server sends one. */
  readonly onSnapshot = this.snapshotEmitter.event;
  readonly onWorker = this.workerEmitter.event;
  readonly onPool = this.poolEmitter.event;
  readonly onRoutes = this.routesEmitter.event;
  readonly onMetrics = this.metricsEmitter.event;
  readonly onLog = this.logEmitter.event;
  readonly onConfig = this.configEmitter.event;
  /** The server announced that it stops (asked by anyone: this editor, the CLI, Ctrl-C). */
  readonly onStopping = this.stoppingEmitter.event;
  /** Every event but replies, before the typed ones (the session store takes them all). */
  readonly onEvent = this.eventEmitter.event;

  private unsubscribe: () => void = () => undefined;
  private started = false;
  private disposed = false;

  private constructor(private readonly transport: Transport) {}

  /**
   * Start delivering events. Call it once the listeners are subscribed: the events that
   * arrived with the snapshot are delivered right after (a worker that became ready while
   * the client connected would otherwise be missed and stay "booting").
   */
  start(): void {
    if (this.started || this.disposed) return;
    this.started = true;
    this.unsubscribe = this.transport.onEvent((event) => this.dispatch(event));
  }

  /** The snapshot the server sent on connect (later ones arrive through onSnapshot). */
  get snapshot(): Snapshot { return this.transport.snapshot; }

  /** Resolves when the connection has closed, for whatever reason. */
  get closed(): Promise<{ code: number; reason: string }> { return this.transport.closed; }

  static async connect(port: number, token: string): Promise<ControlClient> {
    return new ControlClient(await connectControl({ port, token }));
  }

  request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]> {
    return this.transport.request(command) as Promise<ControlResults[R['type']]>;
  }

  private dispatch(event: ControlEvent): void {
    if (this.disposed) return;
    if (event.type !== 'reply') this.eventEmitter.fire(event);
    switch (event.type) {
      case 'snapshot': this.snapshotEmitter.fire(event.snapshot); break;
      case 'worker': this.workerEmitter.fire(event.worker); break;
      case 'pool': this.poolEmitter.fire(event.pool); break;
      case 'routes': this.routesEmitter.fire(event.routes); break;
      case 'metrics': this.metricsEmitter.fire(event.metrics); break;
      case 'log': this.logEmitter.fire(event.line); break;
      case 'config': this.configEmitter.fire({ applied: event.applied, diagnostics: event.diagnostics, restartNeeded: event.restartNeeded }); break;
      case 'stopping': this.stoppingEmitter.fire(); break;
      case 'reply': break; // the transport matches replies to requests
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unsubscribe();
    void this.transport.close();
    for (const e of [this.snapshotEmitter, this.workerEmitter, this.poolEmitter, this.routesEmitter, this.metricsEmitter,
      this.logEmitter, this.configEmitter, this.stoppingEmitter, this.eventEmitter]) e.dispose();
  }
}
