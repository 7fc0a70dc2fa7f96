// A pool that runs any program serving HTTP on $PORT (a Vite or Next dev server, a Go
// binary): one process, started through commandGuard so it never outlives the server,
// ready once its port accepts connections, restarted with back-off when it exits.
// Requests reach it over HTTP (the only pools that are not spoken to in frames).
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import type { CommandPoolConfig } from '../config/types';
import type { Logger } from '../log';
import type { PoolInfo, WorkerInfo, WorkerState } from '../protocol';
import { Backoff } from './backoff';
import { readEnvFile } from './envFile';
import type { PoolEvents } from './pool';
import { HttpUpstream } from '../upstream/http';
import type { ResponseSink, Upstream, UpstreamCall, UpstreamFailure, UpstreamRequest } from '../upstream/types';

const BOOT_TIMEOUT_MS = 120000; // dev servers that build first can be slow
const PROBE_INTERVAL_MS = 100;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class CommandPool implements Upstream {
  /** A dev server reads its body as it comes, like any HTTP server. */
  readonly buffersRequestsByDefault = false;
  status: PoolInfo['state'] = 'stopped';
  failure: string | undefined;
  port: number | undefined;
  private child: ChildProcess | undefined;
  private state: WorkerState = 'exited';
  private startedAt = 0;
  private readonly backoff = new Backoff(1000, 30000);
  private retryTimer: NodeJS.Timeout | undefined;
  private readyWaiters: Array<(ok: boolean) => void> = [];
  private workerId = 0;
  private stopping = false;

  constructor(
    public config: CommandPoolConfig,
    private readonly logger: Logger,
    private readonly events: PoolEvents,
    private readonly nextWorkerId: () => number,
  ) {
    this.http = new HttpUpstream(`pool ${config.name}`, () => this.target(), `${config.name}:cmd`);
  }

  get name(): string {
    return this.config.name;
  }
  private readonly http: HttpUpstream;

  submit(request: UpstreamRequest, sink: ResponseSink): UpstreamCall {
    return this.http.submit(request, sink);
  }

  upgrade(request: UpstreamRequest, socket: Socket, head: Buffer): void {
    this.http.upgrade(request, socket, head);
  }

  private async target(): Promise<string | { failure: UpstreamFailure }> {
    const url = await this.ready();
    return url ?? { failure: { code: 'UNAVAILABLE', message: this.failure ?? `the program of pool '${this.name}' is not running` } };
  }

  get wanted(): number {
    return 1;
  }
  get queueDepth(): number {
    return this.readyWaiters.length;
  }

  start(): void {
    this.status = 'running';
    this.stopping = false;
    void this.launch();
  }

  /** The URL to forward to once the program listens; waits for it (up to the boot time-out). */
  ready(): Promise<string | undefined> {
    if (this.state === 'idle' && this.port) return Promise.resolve(`http://127.0.0.1:${this.port}`);
    if (this.status === 'stopped' || this.status === 'backoff') return Promise.resolve(undefined);
    return new Promise((resolve) => this.readyWaiters.push((ok) => resolve(ok && this.port ? `http://127.0.0.1:${this.port}` : undefined)));
  }

  info(): PoolInfo {
    return { name: this.name, kind: 'command', command: this.config.command, wanted: 1, state: this.status, failure: this.failure };
  }

  workerInfos(): WorkerInfo[] {
    if (!this.child) return [];
    return [{ id: this.workerId, pool: this.name, pid: this.child.pid, state: this.state, requests: 0, inFlight: 0, startedAt: this.startedAt, generation: 1 }];
  }

  async reload(config?: CommandPoolConfig): Promise<void> {
    if (config) this.config = config;
    this.logger.info('server', `pool '${this.name}': restarting ${this.config.command}`, { pool: this.name });
    await this.end();
    this.stopping = false;
    this.status = 'running';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.backoff.reset();
    await this.launch();
  }

  async stop(graceMs: number): Promise<void> {
    this.status = 'stopped';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.end(graceMs);
    this.settle(false);
    this.events.onPool(this.info());
  }

  private async end(graceMs = 3000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end(); // the guard ends the program's whole process group
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs + 2500);
    await exited;
    clearTimeout(timer);
  }

  private async launch(): Promise<void> {
    const port = await freePort();
    if (this.status === 'stopped') return;
    this.port = port;
    this.workerId = this.nextWorkerId();
    const cfg = this.config;
    const env = {
      ...process.env,
      ...(cfg.envFile ? readEnvFile(cfg.envFile, (m) => this.logger.warn('config', m, { pool: this.name })) : {}),
      ...cfg.env,
      PORT: String(port),
      HOST: '127.0.0.1',
    };
    // The shell expands $PORT itself; on Windows %PORT% would, so spell it out there.
    const command = process.platform === 'win32' ? cfg.command.replace(/\$PORT\b|\$\{PORT\}/g, String(port)) : cfg.command;
    const child = spawn(process.execPath, [path.join(__dirname, 'commandGuard.js'), command], {
      cwd: cfg.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    this.state = 'booting';
    this.startedAt = Date.now();
    this.logger.info('server', `pool '${this.name}': started \`${cfg.command}\` with PORT=${port} (pid ${child.pid})`, { pool: this.name, workerId: this.workerId });
    for (const stream of [child.stdout!, child.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (rest + text).split(/\r?\n/);
        rest = lines.pop() ?? '';
        for (const line of lines) this.logger.info('worker', line, { pool: this.name, workerId: this.workerId });
      });
    }
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    this.events.onWorker(this.workerInfos()[0]);

    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    while (this.child === child && child.exitCode === null && Date.now() < deadline) {
      if (await portAccepts(port)) {
        this.state = 'idle';
        this.failure = undefined;
        this.backoff.reset();
        this.logger.info('server', `pool '${this.name}': ready on port ${port}`, { pool: this.name, workerId: this.workerId });
        this.events.onWorker(this.workerInfos()[0]);
        this.events.onPool(this.info());
        this.settle(true);
        return;
      }
      await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
    }
    if (this.child === child && child.exitCode === null) {
      this.failure = `\`${cfg.command}\` did not listen on $PORT (${port}) within ${BOOT_TIMEOUT_MS / 1000}s; make it serve on the port in $PORT`;
      this.logger.error('server', this.failure, { pool: this.name });
      child.stdin?.end();
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.state = 'exited';
    this.events.onWorker({ ...this.workerInfos()[0], state: 'exited', exitCode: code });
    this.child = undefined;
    if (this.stopping || this.status === 'stopped') return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    this.failure = this.failure ?? `\`${this.config.command}\` ${how}`;
    const delay = this.backoff.fail();
    this.logger.error('server', `pool '${this.name}': \`${this.config.command}\` ${how}; starting it again in ${delay / 1000}s`, { pool: this.name });
    this.status = 'backoff';
    this.settle(false);
    this.events.onPool(this.info());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.status = 'running';
      this.failure = undefined;
      void this.launch();
    }, delay);
    this.retryTimer.unref();
  }

  private settle(ok: boolean): void {
    for (const resolve of this.readyWaiters.splice(0)) resolve(ok);
  }
}
