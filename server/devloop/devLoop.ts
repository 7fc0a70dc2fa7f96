// The developer loop of one running server: what open pages hear, and when.
// - A code or template save reloads a pool (main.ts starts it; trackReload follows it).
//   Pages refresh only when that reload has completed, i.e. every new worker reported
//   ready and took over; a refresh sooner would race the restart.
// - A reload that fails keeps the old workers (pool.ts) and shows the failure, with
//   file:line and the traceback, over every open page; the next good reload clears it.
// - A file under a static route changes: a stylesheet is swapped in place, anything else
//   refreshes the pages at once (no worker is involved). A static route's HTML files get
//   the script too (whole files held in memory; static.ts keeps their validators right).
// - The proxy's own 502/503/504 pages, to a browser, get the script as well: such a page
//   reloads once the app is back (a good reload, or workers ready again).
// - A detected Django project's static files are collected and kept fresh (djangoStatic.ts).
// The browser half (script, socket, injection, static watchers) exists only in
// development (devLoopWanted); Django's collect runs whenever its route is served.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { DEFAULTS } from '../config/defaults';
import type { DevConfig, PythonPoolConfig, ServeConfig, StaticRoute } from '../config/types';
import type { Logger } from '../log';
import { TEMPLATE_FOLDER_NAMES, watchTrees, type CodeWatcher } from '../pool/codeWatcher';
import type { PoolFailure, WorkerInfo } from '../protocol';
import type { ResponseSink } from '../upstream/types';
import { DjangoStatic } from './djangoStatic';
import { LiveReloadHub, type PageFailure } from './hub';
import { refreshErrorPage } from '../proxy/errorPages';
import type { HtmlRewriter } from '../proxy/static';
import { acceptsHtml, injectingSink, scriptTag, withScriptTag } from './inject';
import { djangoStaticRoot } from './paths';

/** What the proxy asks of the developer loop: the reserved path, and the HTML transforms. */
export interface DevLoopFront {
  handleRequest(req: IncomingMessage, res: ServerResponse, pathname: string): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, pathname: string): boolean;
  /** `basePath`: the path prefix the page is served under (a trusted front's, or code-server's /absproxy/PORT). */
  transform(req: IncomingMessage, sink: ResponseSink, basePath?: string): ResponseSink;
  /** For a static route's HTML files, when the request is a browser's page load (one rewriter per base path, kept); else undefined. */
  staticPages(req: IncomingMessage, basePath?: string): HtmlRewriter | undefined;
  /** Called once a request's base path is known: a browser's 502/503/504 page will refresh by itself. */
  errorPages(req: IncomingMessage, res: ServerResponse, basePath?: string): void;
}

/** The developer loop in the browser: on unless turned off, and only when serving for development (as the inspector decides). */
export function devLoopWanted(config: ServeConfig, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.SERVESTACK_LIVERELOAD === '0') return false;
  if (!(config.dev ?? devDefaults()).liveReload) return false;
  if (env.SERVESTACK_LIVERELOAD === '1') return true;
  if (env.NODE_ENV === 'production') return false;
  const host = config.listen.host;
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function devDefaults(): DevConfig {
  return { liveReload: DEFAULTS.dev.liveReload as boolean, watch: [...(DEFAULTS.dev.watch as string[])] };
}

export interface DevLoopOptions {
  logger: Logger;
  browser: boolean;
  /** The interpreter a pool runs (its own, else the server's default). */
  pythonFor(pool: PythonPoolConfig): string;
  /** Every worker of every pool, for "ready". */
  workers(): WorkerInfo[];
}

export class DevLoop {
  readonly hub: LiveReloadHub | undefined;
  readonly front: DevLoopFront | undefined;
  private readonly failures = new Map<string, PageFailure>();
  private readonly tracebacks = new Map<string, string>();
  private readonly tracked = new WeakSet<Promise<void>>();
  private staticWatchers: CodeWatcher[] = [];
  private staticKey = '';
  private readonly django = new Map<string, DjangoStatic>();
  private wasReady = false;
  private config!: ServeConfig;
  private stopLogTap: (() => void) | undefined;

  constructor(private readonly options: DevLoopOptions) {
    if (!options.browser) return;
    const hub = new LiveReloadHub({
      logger: options.logger,
      instance: randomBytes(8).toString('hex'),
      ready: () => this.ready(),
      failure: () => [...this.failures.values()][0],
    });
    this.hub = hub;
    this.front = {
      handleRequest: (req, res, pathname) => hub.handleRequest(req, res, pathname),
      handleUpgrade: (req, socket, head, pathname) => hub.handleUpgrade(req, socket, head, pathname),
      transform: (req, sink, basePath) => injectingSink(req, sink, basePath || '/'),
      // A static page gets the script when a browser asks for it, as an app's page does (injectingSink).
      staticPages: (req, basePath) => (acceptsHtml(req.headers.accept) ? this.staticRewriter(basePath || '/') : undefined),
      errorPages: (req, res, basePath) => {
        if (acceptsHtml(req.headers.accept)) refreshErrorPage(res, (status) => scriptTag(basePath || '/', undefined, { status, seen: hub.seen(status) }));
      },
    };
    // The pool logs a load failure's traceback once, as a worker line; the overlay shows it.
    this.stopLogTap = options.logger.onLine((line) => {
      if (line.source === 'worker' && line.level === 'error' && line.pool && line.text.startsWith('Traceback')) this.tracebacks.set(line.pool, line.text);
    });
  }

  /** Before the proxy listens: Django's first collect (so /static/ answers from the first page), then the watchers. */
  async start(config: ServeConfig): Promise<void> {
    this.config = config;
    await this.syncDjango();
    this.syncStaticWatchers();
  }

  configChanged(config: ServeConfig): void {
    this.config = config;
    void this.syncDjango();
    this.syncStaticWatchers();
  }

  /** Template folders a framework reported for a pool (Django's TEMPLATES), for its code watcher. */
  templateDirs(pool: string): string[] {
    return this.django.get(pool)?.report?.templateDirs ?? [];
  }

  /** What "dev.watch" names, for every pool's code watcher. */
  extraWatched(): string[] {
    return (this.config?.dev ?? devDefaults()).watch;
  }

  /**
   * Follows one reload of `pool`: pages refresh when it completes, or show why it failed.
   * The same promise (reloads folded into one) is followed once.
   */
  trackReload(pool: string, cwd: string, reload: Promise<void>, failure: () => PoolFailure | undefined): void {
    if (this.tracked.has(reload)) return;
    this.tracked.add(reload);
    reload.then(
      () => {
        this.failures.delete(pool);
        this.tracebacks.delete(pool);
        void this.django.get(pool)?.collect();
        this.hub?.broadcast({ t: 'reload' });
      },
      (error: Error) => {
        const detail = failure();
        const file = detail?.file ? (path.isAbsolute(detail.file) && !path.relative(cwd, detail.file).startsWith('..') ? path.relative(cwd, detail.file) : detail.file) : undefined;
        const shown: PageFailure = {
          pool,
          message: detail?.message ?? error.message,
          ...(file ? { where: `${file}${detail?.line ? `:${detail.line}` : ''}` } : {}),
          ...(this.tracebacks.get(pool) ? { traceback: this.tracebacks.get(pool) } : {}),
        };
        this.failures.set(pool, shown);
        this.hub?.broadcast({ t: 'failure', failure: shown });
      },
    );
  }

  /** A worker changed state: pages waiting for a restarted server reload once every pool can answer. */
  workersChanged(): void {
    if (!this.hub) return;
    const ready = this.ready();
    if (ready && !this.wasReady) this.hub.broadcast({ t: 'ready' });
    this.wasReady = ready;
  }

  close(): void {
    this.stopLogTap?.();
    for (const w of this.staticWatchers) w.close();
    this.staticWatchers = [];
    for (const d of this.django.values()) d.close();
    this.django.clear();
    this.hub?.close();
  }

  private readonly rewriters = new Map<string, HtmlRewriter>();

  private staticRewriter(basePath: string): HtmlRewriter {
    let rewriter = this.rewriters.get(basePath);
    if (!rewriter) {
      const tag = scriptTag(basePath);
      // The ETag names the tag's version: another base path (or a changed tag) is another representation.
      const key = `lr${createHash('sha1').update(tag).digest('hex').slice(0, 8)}`;
      rewriter = { key, rewrite: (html) => withScriptTag(html, tag) };
      if (this.rewriters.size >= 16) this.rewriters.clear(); // base paths come from a trusted front: few
      this.rewriters.set(basePath, rewriter);
    }
    return rewriter;
  }

  private ready(): boolean {
    const byPool = new Map<string, boolean>();
    // A Python pool with no worker at all (backing off after its app failed to load) is not ready.
    for (const pool of Object.values(this.config?.pools ?? {})) if (pool.kind === 'python') byPool.set(pool.name, false);
    for (const w of this.options.workers()) byPool.set(w.pool, (byPool.get(w.pool) ?? false) || w.state === 'idle' || w.state === 'busy');
    return [...byPool.values()].every(Boolean);
  }

  /** A static route's files: a stylesheet swaps in place, anything else refreshes the page. */
  private syncStaticWatchers(): void {
    if (!this.hub) return;
    const routes = this.config.routes.filter((r): r is StaticRoute => r.kind === 'static');
    const key = JSON.stringify(routes.map((r) => [r.path, r.root]));
    if (key === this.staticKey) return;
    this.staticKey = key;
    for (const w of this.staticWatchers) w.close();
    this.staticWatchers = routes.map((route) =>
      watchTrees([route.root], (file) => !isPoolSource(file, this.config), (files) => this.onStaticChange(route, files), {
        debounceMs: 100,
        onWarning: (message) => this.options.logger.warn('server', message),
      }),
    );
  }

  private onStaticChange(route: StaticRoute, files: string[]): void {
    const hub = this.hub!;
    if (files.some((f) => !f.endsWith('.css'))) return hub.broadcast({ t: 'reload' });
    for (const file of files) {
      const rel = path.relative(route.root, file).split(path.sep).map(encodeURIComponent).join('/');
      hub.broadcast({ t: 'css', path: `${route.path.endsWith('/') ? route.path : `${route.path}/`}${rel}` });
    }
  }

  private async syncDjango(): Promise<void> {
    const root = djangoStaticRoot(this.config.dir);
    const served = this.config.routes.some((r) => r.kind === 'static' && r.root === root);
    const pool = Object.values(this.config.pools).find((p): p is PythonPoolConfig => p.kind === 'python');
    for (const [name, d] of this.django) {
      if (!served || name !== pool?.name) {
        d.close();
        this.django.delete(name);
      }
    }
    if (!served || !pool || this.django.has(pool.name)) return;
    const django = new DjangoStatic(pool, this.options.pythonFor(pool), root, this.options.logger);
    this.django.set(pool.name, django);
    await django.start();
  }
}

/** A file a pool's code watcher reloads for (.py, templates): its pages refresh when the reload is done, not now. */
function isPoolSource(file: string, config: ServeConfig): boolean {
  if (file.endsWith('.py')) return true;
  return path.dirname(file).split(path.sep).some((name) => TEMPLATE_FOLDER_NAMES.has(name))
    || (config.dev ?? devDefaults()).watch.some((p) => file === p || file.startsWith(p + path.sep));
}
