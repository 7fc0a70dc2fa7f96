// The running server: config → pools → proxy → control channel. It is the
// ControlTarget the editor, the CLI and the dashboard steer, and the one place that
// swaps a new config in (built and checked in full first; the old one keeps serving
// when the new one fails).
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { parseTree } from 'jsonc-parser';
import { parseConfigText } from './config';
import { placeOf, planConfigChange, runningAfter } from './config/apply';
import { DiagnosticList } from './config/diagnostics';
import { checkProvision } from './config/provision';
import type { Diagnostic, LimitsConfig, PoolConfig, PythonPoolConfig, ServeConfig } from './config/types';
import { startControlServer, type ControlServer } from './control/server';
import { createMetrics, type Metrics } from './control/metrics';
import { inspectorWanted, RequestInspector } from './control/inspector';
import { CpuSampler } from './control/workerCpu';
import { removeServerState, writeServerState } from './control/stateFile';
import { watchConfigFile, type ConfigWatcher } from './control/configWatcher';
import type { ControlTarget } from './control/target';
import { ServeStackError } from './errors';
import { Logger } from './log';
import { Pool } from './pool/pool';
import { CommandPool } from './pool/commandPool';
import { watchPoolSources, type CodeWatcher } from './pool/codeWatcher';
import { DevLoop, devLoopWanted } from './devloop/devLoop';
import { debugWorkersIn, dumpStackIn, stopDebuggingIn, type DebugOptions } from './pool/debug';
import { CONTROL_PROTOCOL_VERSION, SHUTDOWN, WORKER_CONTRACT, type ConfigApplyResult, type ControlEvent, type LogLine, type PoolInfo, type RestartNeededField, type RouteInfo, type Snapshot, type WorkerInfo } from './protocol';
import { buildRoutes, ProxyServer, type ProxyRoutes, type RequestRecorder } from './proxy/server';
import { HttpsRedirect } from './proxy/httpsRedirect';
import { prepareServerTls, type ServerTls } from './tls/serverTls';
import { TrustWatch } from './tls/trustWatch';
import { TempFiles } from './upstream/tempFiles';
import { VERSION } from './version';
import { IdleHeap } from './idleHeap';
import { lanAddress, namedUrl } from './network';
import { expandPathPrefix, trustList } from './proxy/trustedFront';

export interface ServeOptions {
  config: ServeConfig;
  /** Interpreter for pools that name none (the editor's choice, --python). */
  python?: string;
  logger?: Logger;
  /** Requests a busy worker may hold beyond its threads (DESIGN: prefetch); 0 = strict. */
  prefetch?: number;
  /** Start the control channel and write the state file (off only in narrow tests). */
  control?: boolean;
  /** Watch servestack.json and apply valid changes. */
  watchConfig?: boolean;
  overrides?: { host?: string; port?: number; workers?: number };
  /** Keep recent requests for the dashboard's inspector; default: in development only (inspectorWanted). */
  inspector?: boolean;
  /** "Serve on my network": also listen on the LAN address (`address` injectable for tests; default lanAddress()). */
  lan?: { address?: string };
  /** Also serve under this path prefix ("/absproxy/{port}"; `{port}` is the bound port), told to the app as SCRIPT_NAME. */
  pathPrefix?: string;
  /** The live-reload script in pages; default: in development only, unless "dev.liveReload" is false (devLoopWanted). */
  liveReload?: boolean;
}

/** What applyConfig came to: problems found while provisioning (nothing changed), or what waits for a restart. */
export interface ApplyOutcome {
  applied: boolean;
  problems: Diagnostic[];
  restartNeeded: RestartNeededField[];
}

// How many requests a busy worker may hold beyond the one it runs. Deep enough to keep it
// working while the front waits for a core (at c=64 on 2 cores, 5 left the workers asleep
// 40 % of the time: perf sched, bench/RESULTS.md, 2026-12-02 07:00–09:20); a request prefetched
// behind a slow one is still taken back, so the mixed scenario's fast p99 stays put.
const DEFAULT_PREFETCH = 8;

export class RunningServer implements ControlTarget {
  readonly logger: Logger;
  readonly metrics: Metrics = createMetrics();
  private readonly pools = new Map<string, Pool | CommandPool>();
  private proxy!: ProxyServer;
  private control: ControlServer | undefined;
  private watcher: ConfigWatcher | undefined;
  private readonly codeWatchers = new Map<string, CodeWatcher>();
  private readonly codeWatcherKeys = new Map<string, string>();
  private workerRefreshTimer: NodeJS.Timeout | undefined;
  private idleHeap: IdleHeap | undefined;
  private readonly lastSentFigures = new Map<number, string>();
  private metricsTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(event: ControlEvent) => void>();
  private nextWorkerId = 1;
  private inspector: RequestInspector | undefined;
  private devLoop!: DevLoop;
  private readonly cpu = new CpuSampler();
  private stopping: Promise<void> | undefined;
  private configText: string | undefined;
  private tls: ServerTls | undefined;
  private trustWatch: TrustWatch | undefined;
  private redirect: HttpsRedirect | undefined;
  url = '';
  /** http://NAME.localhost:PORT/ when the config has a "name". */
  namedUrl: string | undefined;
  /** The LAN URL when serving on the network. */
  lanUrl: string | undefined;
  readonly startedAt = Date.now();

  constructor(public config: ServeConfig, private readonly options: ServeOptions) {
    this.logger = options.logger ?? new Logger();
    this.logger.onLine((line) => this.emit({ type: 'log', line }));
    if (config.file) {
      try {
        this.configText = readFileSync(config.file, 'utf8');
      } catch {
        this.configText = undefined;
      }
    }
  }

  private frontTrust(config: ServeConfig) {
    const port = this.proxy.address?.port ?? config.listen.port;
    return { trusted: trustList(config.trustedProxies), ...(this.options.pathPrefix ? { pathPrefix: expandPathPrefix(this.options.pathPrefix, port) } : {}) };
  }

  /** The second listener of "Serve on my network"; the control channel stays on loopback. */
  private async listenOnNetwork(address = lanAddress()): Promise<void> {
    if (!address) {
      throw new ServeStackError('LISTEN_FAILED', 'this machine has no network address other than loopback, so it cannot be served on the network', {
        hint: 'connect to a network (Wi-Fi or Ethernet) and serve again',
      });
    }
    try {
      this.lanUrl = (await this.proxy.listenAlso(address)).url;
    } catch (error) {
      throw new ServeStackError('LISTEN_FAILED', `could not also listen on ${address}:${this.proxy.address?.port}: ${(error as Error).message}`, {
        hint: 'another program may hold that port on the network address; choose another port with --port',
        cause: error,
      });
    }
    this.logger.warn('server', `serving on the network at ${this.lanUrl}: anyone on this network can open the app (the control channel stays on loopback)`);
  }

  get controlInfo(): { port: number; token: string } | undefined {
    return this.control ? { port: this.control.port, token: this.control.token } : undefined;
  }

  async start(): Promise<void> {
    // Certificates first: a bad file stops the start before any worker is spawned.
    if (this.config.tls) this.tls = await this.prepareTls(this.config.tls);
    for (const pool of Object.values(this.config.pools)) this.addPool(pool, this.config.limits);
    this.devLoop = new DevLoop({
      logger: this.logger,
      browser: this.options.liveReload ?? devLoopWanted(this.config),
      pythonFor: (pool) => pool.python ?? this.defaultPython(),
      workers: () => [...this.pools.values()].flatMap((p) => p.workerInfos()),
    });
    // While the workers boot: Django's static files are collected before the first request can ask.
    await this.devLoop.start(this.config);
    this.syncCodeWatchers();
    this.proxy = new ProxyServer(
      buildRoutes(this.config.routes, this.pools, this.config.limits, this.logger),
      this.logger,
      this.requestRecorder(),
      TempFiles.forServer(),
      this.tls?.current(),
    );
    this.proxy.devLoop = this.devLoop.front;
    this.tls?.onRenewed((pair) => this.proxy.setCertificate(pair));
    // Request counts and memory change without a state change: send the workers whose
    // figures moved, at most once a second, so views never go stale.
    this.workerRefreshTimer = setInterval(() => this.refreshWorkers(), 1000);
    this.workerRefreshTimer.unref();
    const proxy = this.proxy;
    this.idleHeap = new IdleHeap({
      activity: () => proxy.requestsSeen,
      collected: (before, after, ms) => this.logger.debug('server', `quiet after load: the heap went from ${mib(before)} to ${mib(after)} MiB (one full GC, ${ms.toFixed(1)} ms)`),
    });
    this.idleHeap.start();
    this.metrics.setQueueDepthSource(() => Object.fromEntries([...this.pools].map(([name, p]) => [name, p.queueDepth])));
    try {
      const bound = await this.proxy.listen(this.config.listen);
      this.url = bound.url;
      this.proxy.trust = this.frontTrust(this.config);
      if (this.config.name) this.namedUrl = namedUrl(this.config.name, bound.port);
      if (this.options.lan) await this.listenOnNetwork(this.options.lan.address);
      if (this.config.httpRedirect) await this.listenRedirect(this.config.httpRedirect);
    } catch (error) {
      this.tls?.stop();
      await this.proxy.close(0).catch(() => undefined);
      this.devLoop.close();
      await Promise.all([...this.pools.values()].map((p) => p.stop(0)));
      throw error;
    }
    if (this.tls?.ca) {
      const ca = this.tls.ca;
      this.trustWatch = new TrustWatch(ca, (status) => {
        if (!status.trusted) this.logger.info('server', `HTTPS uses ServeStack's local certificate authority, which this machine does not trust yet: run \`servestack trust\` once (or ServeStack: Trust Local HTTPS) so browsers accept ${this.url}`);
        this.emit({ type: 'snapshot', snapshot: this.snapshot() });
      });
      void this.trustWatch.start().catch((error: Error) => this.logger.warn('server', `could not check whether the local CA is trusted: ${error.message}`));
    }
    if (this.options.control !== false) {
      this.control = await startControlServer(this, {
        metrics: this.metrics,
        onLog: (level, text) => this.logger.log(level, 'server', `control: ${text}`),
      });
      try {
        writeServerState(this.config.dir, {
          pid: process.pid,
          dir: this.config.dir,
          url: this.url,
          controlPort: this.control.port,
          token: this.control.token,
          startedAt: this.startedAt,
          version: VERSION,
        });
      } catch (error) {
        // The editor gets the token over IPC; only the CLI verbs need the file.
        this.logger.warn('server', `${(error as Error).message}; \`servestack status\` and the other control verbs will not find this server`);
      }
    } else {
      this.metricsTimer = setInterval(() => this.emit({ type: 'metrics', metrics: this.metrics.sample() }), 1000);
      this.metricsTimer.unref();
    }
    if (this.options.watchConfig !== false) {
      // A detected app is watched too: writing servestack.json (e.g. "Create Config") takes effect.
      const file = this.config.file ?? path.join(this.config.dir, 'servestack.json');
      this.watcher = watchConfigFile(
        file,
        async (text) => {
          this.logger.info('config', `${path.basename(file)} changed; applying`);
          await this.applyConfigText(text);
        },
        { initialText: this.configText, onError: (err) => this.logger.warn('config', `watching ${file}: ${err.message}`) },
      );
    }
  }

  private async prepareTls(tls: NonNullable<ServeConfig['tls']>): Promise<ServerTls> {
    const prepared = await prepareServerTls(tls, {
      hostNames: [this.config.listen.host],
      onRenewed: (notAfter) => this.logger.info('server', `HTTPS certificate renewed; valid until ${notAfter.toISOString()}`),
      onRenewError: (error) => this.logger.warn('server', `the HTTPS certificate could not be renewed (retrying in a minute): ${error.message}`),
    });
    const { notAfter } = prepared.current();
    this.logger.info('server', prepared.mode === 'auto'
      ? `HTTPS (HTTP/2 and HTTP/1.1) with a certificate from the local CA in ${prepared.ca!.dir}, valid until ${notAfter.toISOString()} and renewed by itself`
      : `HTTPS (HTTP/2 and HTTP/1.1) with ${(tls as { cert: string }).cert}, valid until ${notAfter.toISOString()}`);
    return prepared;
  }

  private async listenRedirect(at: { host: string; port: number }): Promise<void> {
    const redirect = new HttpsRedirect(() => this.proxy.address?.port ?? 0, this.config.listen.host, this.logger);
    try {
      await redirect.listen(at.host, at.port);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ServeStackError(code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'LISTEN_FAILED', `"httpRedirect" could not listen on ${at.host}:${at.port}: ${(error as Error).message}`, {
        hint: 'choose another port for "httpRedirect" in servestack.json, or remove it',
        cause: error,
      });
    }
    this.redirect = redirect;
    this.logger.info('server', `plain HTTP on ${at.host}:${redirect.port} redirects to ${this.url}`);
  }

  private httpsInfo(): Snapshot['server']['https'] {
    if (!this.tls) return undefined;
    const redirectUrl = this.redirect ? `http://${this.config.listen.host.includes(':') ? `[${this.config.listen.host}]` : this.config.listen.host}:${this.redirect.port}/` : undefined;
    return {
      mode: this.tls.mode,
      notAfter: this.tls.current().notAfter.toISOString(),
      ...(this.tls.ca ? { caFile: this.tls.ca.certFile } : {}),
      ...(this.trustWatch?.status ? { trusted: this.trustWatch.status.trusted } : {}),
      ...(redirectUrl ? { redirectUrl } : {}),
    };
  }

  /** Metrics for every request; the inspector too when it is on (it taps bodies as they pass). */
  private requestRecorder(): RequestRecorder {
    const metrics = this.metrics;
    const refused = (status: number) => metrics.recordRequest('-', undefined, status, 0);
    if (!(this.options.inspector ?? inspectorWanted(this.config.listen.host))) {
      return Object.assign((r: Parameters<RequestRecorder>[0]) => metrics.recordRequest(r.route, r.pool, r.status, r.ms), { refused });
    }
    const inspector = new RequestInspector({ listener: () => this.proxy.address && { ...this.proxy.address, secure: this.proxy.scheme === 'https' }, recentLogs: (n) => this.logger.recentLines(n) });
    this.inspector = inspector;
    return Object.assign(
      (r: Parameters<RequestRecorder>[0]) => {
        metrics.recordRequest(r.route, r.pool, r.status, r.ms);
        inspector.record(r);
      },
      { tap: (req: Parameters<RequestInspector['tap']>[0], res: Parameters<RequestInspector['tap']>[1], arrivedPerf: number) => inspector.tap(req, res, arrivedPerf), refused },
    );
  }

  // ── ControlTarget ─────────────────────────────────────────────────────────────

  requestInspector(): RequestInspector | undefined {
    return this.inspector;
  }

  snapshot(): Snapshot {
    return {
      protocol: CONTROL_PROTOCOL_VERSION,
      server: { pid: process.pid, version: VERSION, dir: this.config.dir, url: this.url, configFile: this.config.file, startedAt: this.startedAt, ...(this.tls ? { https: this.httpsInfo() } : {}) },
      pools: this.poolInfos(),
      workers: this.workerInfos(),
      routes: this.routeInfos(),
    };
  }

  async scale(poolName: string | undefined, workers: number): Promise<void> {
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      throw new ServeStackError('CONTROL_BAD_COMMAND', `cannot scale to ${workers} workers`, { hint: 'give a whole number from 1 to 256' });
    }
    const pool = this.poolNamed(poolName);
    if (pool instanceof CommandPool) {
      throw new ServeStackError('CONTROL_BAD_COMMAND', `pool '${pool.name}' runs one program (${pool.config.command}); only Python pools scale`);
    }
    pool.scale(workers);
  }

  async reload(poolName?: string): Promise<void> {
    const targets = poolName === undefined ? [...this.pools.values()] : [this.poolNamed(poolName)];
    await Promise.all(targets.map((p) => this.followReload(p, p.reload())));
  }

  async restartWorker(id: number): Promise<void> {
    await this.withWorker(id, (pool) => pool.restartWorker(id));
  }

  async killWorker(id: number): Promise<void> {
    await this.withWorker(id, (pool) => pool.killWorker(id));
  }

  debugWorkers(options: DebugOptions & { pool?: string }): ReturnType<typeof debugWorkersIn> {
    return debugWorkersIn(this.pythonPools(), options);
  }

  stopDebugging(pool?: string): Promise<void> {
    return stopDebuggingIn(this.pythonPools(), pool);
  }

  dumpStack(worker: number): ReturnType<typeof dumpStackIn> {
    return dumpStackIn(this.pythonPools(), worker);
  }

  private pythonPools(): Pool[] {
    return [...this.pools.values()].filter((p): p is Pool => p instanceof Pool);
  }

  /** Runs the action on the Python pool that has worker `id`; a command pool's one process is restarted. */
  private async withWorker(id: number, action: (pool: Pool) => boolean): Promise<void> {
    for (const pool of this.pools.values()) {
      if (pool instanceof CommandPool) {
        if (pool.workerInfos()[0]?.id === id) return pool.reload();
      } else if (action(pool)) return;
    }
    throw new ServeStackError('CONTROL_UNKNOWN_WORKER', `no running worker has id ${id}`, { hint: 'see `servestack status` for the ids' });
  }

  async applyConfigText(text: string): Promise<ConfigApplyResult> {
    const file = this.config.file ?? path.join(this.config.dir, 'servestack.json');
    const result = parseConfigText(text, file, this.config.dir, this.options.overrides);
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    if (!result.config || errors.length > 0) {
      this.refuse(errors, 'the new config has errors');
      this.emit({ type: 'config', applied: false, diagnostics: result.diagnostics });
      return { applied: false, diagnostics: result.diagnostics };
    }
    const outcome = await this.applyConfig(result.config, text);
    if (!outcome.applied) {
      const diagnostics = [...result.diagnostics, ...outcome.problems];
      this.emit({ type: 'config', applied: false, diagnostics });
      return { applied: false, diagnostics };
    }
    this.configText = text;
    const restartNeeded = outcome.restartNeeded.length ? { restartNeeded: outcome.restartNeeded } : {};
    this.emit({ type: 'config', applied: true, diagnostics: result.diagnostics, ...restartNeeded });
    return { applied: true, diagnostics: result.diagnostics, ...restartNeeded };
  }

  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.shutdown();
    return this.stopping;
  }

  recentLogs(lines: number): LogLine[] {
    return this.logger.recentLines(lines);
  }

  onEvent(listener: (event: ControlEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ── config apply ──────────────────────────────────────────────────────────────

  /**
   * Provision, then swap (Caddy's model): plan the change, check what it would start and
   * build the new route table while the running config serves untouched; only when all of
   * that succeeded, swap in one synchronous step (new pools, pool settings, limits, routes),
   * then drain removed pools. Rolling reloads follow the swap: each new worker must boot
   * before an old one retires, and a reload whose app cannot load keeps the old workers.
   * `text` (the file's text) places the diagnostics and restart notices.
   */
  async applyConfig(next: ServeConfig, text?: string): Promise<ApplyOutcome> {
    const before = this.config;
    const file = next.file ?? path.join(next.dir, 'servestack.json');
    const plan = planConfigChange(before, next, { boundPort: this.proxy.address?.port ?? before.listen.port });
    if (plan.unchanged) {
      this.logger.info('config', 'no change to apply');
      return { applied: true, problems: [], restartNeeded: [] };
    }

    // Provision: nothing running changes here.
    const found = checkProvision(next, plan, { defaultPython: this.defaultPython() });
    let routes: ProxyRoutes | undefined;
    if (found.length === 0) {
      try {
        routes = buildRoutes(next.routes, this.pools, next.limits, this.logger);
      } catch (error) {
        found.push({ code: 'CONFIG_APPLY_FAILED', message: `the routes could not be built: ${(error as Error).message}; fix the route, or report this if the config looks right`, path: ['routes'] });
      }
    }
    if (!routes || found.length > 0) {
      const list = new DiagnosticList(file, text ?? '', text === undefined ? undefined : parseTree(text, [], { allowTrailingComma: true }));
      // data.provision: found by the running server, not by the checks an editor runs on the text.
      for (const p of found) list.add(p.code, p.message, p.path, { data: { provision: true } });
      this.refuse(list.items, 'the new config could not be built');
      return { applied: false, problems: list.items, restartNeeded: [] };
    }

    // Swap: one synchronous step, so a request sees the old config or the new one.
    const reloads: Promise<void>[] = [];
    for (const change of plan.pools) {
      const cfg = next.pools[change.name];
      const pool = this.pools.get(change.name);
      switch (change.action) {
        case 'start':
          this.addPool(cfg, next.limits);
          break;
        case 'replace':
          void this.removePool(change.name);
          this.addPool(cfg, next.limits);
          break;
        case 'stop':
          break; // after the routes no longer reach it
        case 'reload':
        case 'update':
          if (pool instanceof CommandPool && cfg.kind === 'command') reloads.push(pool.reload(cfg));
          else if (pool instanceof Pool && cfg.kind === 'python') {
            const old = before.pools[change.name] as PythonPoolConfig;
            // A count scaled by hand (status bar, `servestack scale`) stands until the file's own count changes.
            const kept = old.workers === cfg.workers ? { ...cfg, workers: pool.wanted } : cfg;
            if (change.action === 'reload') {
              this.logger.info('config', `pool '${change.name}': ${change.fields.join(', ')} changed; reloading its workers one at a time`, { pool: change.name });
              reloads.push(pool.reload(kept).catch((error: Error) => this.logger.error('server', error.message, { pool: change.name })));
            } else {
              pool.config = kept;
              if (pool.wanted !== kept.workers) pool.scale(kept.workers);
            }
          }
          break;
      }
    }
    for (const pool of this.pools.values()) if (pool instanceof Pool) pool.setQueueSize(next.limits.queueSize);
    for (const pool of this.pools.values()) if (pool instanceof Pool) pool.setWebSocketLimits({ maxMessageSize: next.limits.maxWebSocketMessageSize, bufferSize: next.limits.bufferSize });
    this.proxy.applyLimits(next.limits);
    this.proxy.trust = this.frontTrust(next);
    const retired = this.proxy.routes;
    this.proxy.routes = routes;
    this.config = runningAfter(before, next);
    for (const change of plan.pools) if (change.action === 'stop') void this.removePool(change.name);
    for (const handler of retired.statics.values()) handler.close();
    this.devLoop.configChanged(this.config);
    this.syncCodeWatchers();

    const restartNeeded = plan.restartNeeded.map((r) => ({ field: r.field, file, ...placeOf(text, r.path), running: r.running, wanted: r.wanted }));
    for (const r of restartNeeded) {
      this.logger.warn('config', `"${r.field}" changed to ${r.wanted} (${path.relative(this.config.dir, file) || file}:${r.line}); restart the server to apply it (it keeps ${r.field === 'listen' ? this.url : r.running})`);
    }
    if (plan.routesChanged) this.emit({ type: 'routes', routes: this.routeInfos() });
    const counts = `${next.routes.length} route${next.routes.length === 1 ? '' : 's'}, ${Object.keys(next.pools).length} pool${Object.keys(next.pools).length === 1 ? '' : 's'}`;
    const limits = plan.limits.map((l) => `${l.field} ${l.from} → ${l.to}${l.applies === 'connection' ? ' (for new connections)' : ''}`);
    this.logger.info('config', `applied: ${counts}${limits.length ? `; ${limits.join(', ')}` : ''}${restartNeeded.length ? `; not applied until a restart: ${restartNeeded.map((r) => r.field).join(', ')}` : ''}`);
    await Promise.all(reloads);
    return { applied: true, problems: [], restartNeeded };
  }

  /** Logs refused diagnostics as `file:line:col: error: message [CODE]`, then that the running config keeps serving. */
  private refuse(diagnostics: Diagnostic[], why: string): void {
    for (const d of diagnostics) this.logger.error('config', `${path.relative(this.config.dir, d.file) || d.file}:${d.line}:${d.col}: error: ${d.message} [${d.code}]`);
    this.logger.warn('config', `${why}; the running config keeps serving`);
  }

  private defaultPython(): string {
    return this.options.python ?? process.env.SERVESTACK_PYTHON ?? (process.platform === 'win32' ? 'python' : 'python3');
  }

  private addPool(cfg: PoolConfig, limits: LimitsConfig): void {
    const events = {
      onWorker: (worker: WorkerInfo) => {
        this.emit({ type: 'worker', worker });
        this.devLoop?.workersChanged();
      },
      onPool: (info: PoolInfo) => this.emit({ type: 'pool', pool: info }),
    };
    if (cfg.kind === 'command') {
      const commandPool = new CommandPool(cfg, this.logger, events, () => this.nextWorkerId++);
      this.pools.set(cfg.name, commandPool);
      commandPool.start();
      this.emit({ type: 'pool', pool: commandPool.info() });
      return;
    }
    const pool = new Pool({
      config: cfg,
      defaultPython: this.defaultPython(),
      runtimeScript: runtimeScriptPath(),
      logger: this.logger,
      events,
      nextWorkerId: () => this.nextWorkerId++,
      queueSize: limits.queueSize,
      prefetch: this.options.prefetch ?? DEFAULT_PREFETCH,
      webSocketLimits: { maxMessageSize: limits.maxWebSocketMessageSize, bufferSize: limits.bufferSize },
    });
    this.pools.set(cfg.name, pool);
    pool.start();
    this.emit({ type: 'pool', pool: pool.info() });
  }

  /** Open pages refresh when a reload completes, or show why it failed (server/devloop). */
  private followReload(pool: Pool | CommandPool, reload: Promise<void>): Promise<void> {
    this.devLoop.trackReload(pool.name, pool.config.cwd, reload, () => (pool instanceof Pool ? pool.failureDetail : undefined));
    return reload;
  }

  /**
   * One source watcher per pool with "reload": true (.py files, template folders, "dev.watch");
   * a save reloads that pool, one worker at a time.
   */
  private syncCodeWatchers(): void {
    const watchedKey = (cfg: PythonPoolConfig) => JSON.stringify([this.devLoop.templateDirs(cfg.name), this.devLoop.extraWatched()]);
    for (const [name, watcher] of this.codeWatchers) {
      const cfg = this.config.pools[name];
      if (!cfg || cfg.kind !== 'python' || !cfg.reload || this.codeWatcherKeys.get(name) !== watchedKey(cfg)) {
        watcher.close();
        this.codeWatchers.delete(name);
      }
    }
    for (const cfg of Object.values(this.config.pools)) {
      if (cfg.kind !== 'python' || !cfg.reload || this.codeWatchers.has(cfg.name)) continue;
      const name = cfg.name;
      this.codeWatcherKeys.set(name, watchedKey(cfg));
      const more = { templateDirs: this.devLoop.templateDirs(name), extra: this.devLoop.extraWatched() };
      this.codeWatchers.set(name, watchPoolSources(cfg.cwd, more, (files) => {
        const pool = this.pools.get(name);
        if (!pool) return;
        const shown = files.slice(0, 3).map((f) => path.relative(cfg.cwd, f)).join(', ') + (files.length > 3 ? ', …' : '');
        this.logger.info('server', `${shown} changed; reloading pool '${name}'`, { pool: name });
        this.followReload(pool, pool.reload()).catch((error: Error) => this.logger.error('server', error.message, { pool: name }));
      }, { onWarning: (message) => this.logger.warn('server', message, { pool: name }) }));
    }
  }

  private async removePool(name: string): Promise<void> {
    const pool = this.pools.get(name);
    if (!pool) return;
    this.pools.delete(name);
    this.logger.info('server', `pool '${name}' removed; draining its workers`, { pool: name });
    await pool.stop(pool.config.timeoutMs || 30000);
  }

  // ── shutdown ──────────────────────────────────────────────────────────────────

  private async shutdown(): Promise<void> {
    this.logger.info('server', 'stopping: finishing requests in flight');
    this.emit({ type: 'stopping' });
    this.watcher?.close();
    for (const w of this.codeWatchers.values()) w.close();
    this.codeWatchers.clear();
    this.devLoop?.close();
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    if (this.workerRefreshTimer) clearInterval(this.workerRefreshTimer);
    this.idleHeap?.stop();
    // One deadline for the proxy's drain and the workers' stop together (protocol.ts SHUTDOWN).
    const deadline = performance.now() + SHUTDOWN.drainMs;
    this.tls?.stop();
    this.trustWatch?.close();
    await Promise.all([this.proxy.close(SHUTDOWN.drainMs), this.redirect?.close()]);
    // Past the deadline, workers still get the contract's grace to exit before they are killed.
    const left = Math.max(WORKER_CONTRACT.killGraceMs, deadline - performance.now());
    await Promise.all([...this.pools.values()].map((p) => p.stop(left)));
    await this.control?.close();
    removeServerState(this.config.dir, process.pid);
    this.logger.info('server', 'stopped');
    this.logger.flush();
  }

  // ── views of the state ───────────────────────────────────────────────────────

  private poolNamed(name: string | undefined): Pool | CommandPool {
    if (name === undefined) {
      if (this.pools.size === 1) return [...this.pools.values()][0];
      throw new ServeStackError('CONTROL_UNKNOWN_POOL', `name a pool: this server runs ${[...this.pools.keys()].join(', ') || 'no pools'}`);
    }
    const pool = this.pools.get(name);
    if (!pool) throw new ServeStackError('CONTROL_UNKNOWN_POOL', `no pool is named '${name}'`, { hint: `pools: ${[...this.pools.keys()].join(', ') || 'none'}` });
    return pool;
  }

  poolInfos(): PoolInfo[] {
    return [...this.pools.values()].map((p) => p.info());
  }

  workerInfos(): WorkerInfo[] {
    return [...this.pools.values()].flatMap((p) => p.workerInfos()).map((w) => {
      const cpuPercent = this.cpu.percentOf(w.pid);
      return cpuPercent === undefined || w.state === 'exited' ? w : { ...w, cpuPercent };
    });
  }

  routeInfos(): RouteInfo[] {
    return this.config.routes.map((r) => ({
      path: r.path,
      kind: r.kind,
      target: r.kind === 'static' ? r.root : r.kind === 'pool' ? r.pool : r.target,
      index: r.index,
    }));
  }

  private refreshWorkers(): void {
    if (this.listeners.size === 0) return;
    this.cpu.sample([...this.pools.values()].flatMap((p) => p.workerInfos()).flatMap((w) => (w.pid !== undefined && w.state !== 'exited' ? [w.pid] : [])));
    const live = new Set<number>();
    for (const worker of this.workerInfos()) {
      live.add(worker.id);
      const figures = `${worker.requests}/${worker.inFlight}/${worker.rssBytes ?? ''}/${worker.state}/${Math.round(worker.cpuPercent ?? 0)}`;
      if (this.lastSentFigures.get(worker.id) === figures) continue;
      this.lastSentFigures.set(worker.id, figures);
      this.emit({ type: 'worker', worker });
    }
    for (const id of this.lastSentFigures.keys()) if (!live.has(id)) this.lastSentFigures.delete(id);
  }

  private emit(event: ControlEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

/** The Python runtime ships beside the bundle (dist/python), as it sits beside this file in server/. */
export function runtimeScriptPath(): string {
  return path.join(__dirname, 'python', 'servestack_worker.py');
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const server = new RunningServer(options.config, options);
  await server.start();
  return server;
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
