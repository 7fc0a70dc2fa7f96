// Django's static files for a detected project. `runserver` serves them from the finders;
// production runs `collectstatic` and lets NGINX `alias` the result. ServeStack does the
// production thing: the project's own interpreter runs collectstatic (through
// python/servestack_django.py, with STATIC_ROOT pointed at a folder ServeStack owns) at
// start and again when a source folder changes, and the proxy serves that folder at
// STATIC_URL as a static route (ETags, ranges, no traversal: the proxy's static handler).
// Chosen over asking the finders for their folders and serving them in finder order: the
// storage and finders are Django's own (custom finders, app order, ignore patterns all
// hold), the export is the same step, and the proxy keeps one root per route.
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { PythonPoolConfig } from '../config/types';
import type { Logger } from '../log';
import { readEnvFile } from '../pool/envFile';
import { resolvePython } from '../pool/pool';
import { watchTrees, type CodeWatcher } from '../pool/codeWatcher';

export interface DjangoReport {
  staticUrl: string | null;
  sources: { prefix: string; dir: string }[];
  templateDirs: string[];
  collected: boolean;
}

const MARKER = 'SERVESTACK_DJANGO ';
/** A Django import plus a first collect of the admin's files takes about a second; a hung settings import must not hold the start. */
const HELPER_TIMEOUT_MS = 60_000;

export function helperScriptPath(): string {
  // Beside the worker runtime: dist/python in the bundle, server/python from sources.
  const here = path.basename(__dirname) === 'devloop' ? path.join(__dirname, '..', 'python') : path.join(__dirname, 'python');
  return path.join(here, 'servestack_django.py');
}

/** Runs the helper once; rejects with the helper's reason (and traceback) when Django could not load. */
export function runDjangoHelper(pool: PythonPoolConfig, python: string, staticRoot: string, collect: boolean, logger: Logger): Promise<DjangoReport> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(pool.envFile ? readEnvFile(pool.envFile, (msg) => logger.warn('config', msg, { pool: pool.name })) : {}),
    ...pool.env,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  };
  const args = [helperScriptPath(), '--app', pool.app, '--cwd', pool.cwd, '--static-root', staticRoot, ...(collect ? ['--collect'] : [])];
  return new Promise((resolve, reject) => {
    execFile(resolvePython(python, pool.cwd), args, { cwd: pool.cwd, env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 8 * 1024 * 1024, windowsHide: true }, (error, stdout, stderr) => {
      const line = stdout.split('\n').reverse().find((l) => l.startsWith(MARKER));
      if (!line) {
        return reject(new Error(`the Django helper gave no answer (${error?.message ?? 'no output'})${stderr ? `: ${stderr.trim().slice(-2000)}` : ''}`));
      }
      const payload = JSON.parse(line.slice(MARKER.length)) as DjangoReport & { error?: string; traceback?: string };
      if (payload.error) return reject(Object.assign(new Error(payload.error), { traceback: payload.traceback }));
      resolve(payload);
    });
  });
}

/**
 * One Django pool's static files: collected at start, then again (debounced, one run at a
 * time) when a finder's folder inside the workspace changes. Folders outside it (Django's
 * own admin files in site-packages) are collected but not watched.
 */
export class DjangoStatic {
  private watcher: CodeWatcher | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  report: DjangoReport | undefined;

  constructor(
    private readonly pool: PythonPoolConfig,
    private readonly python: string,
    readonly staticRoot: string,
    private readonly logger: Logger,
  ) {}

  /** The first collect: resolves when done or failed (a failure is logged; the app still serves). */
  async start(): Promise<void> {
    await this.collect();
    this.watchSources();
  }

  collect(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          this.report = await runDjangoHelper(this.pool, this.python, this.staticRoot, true, this.logger);
          this.logger.debug('server', `Django static files collected into ${this.staticRoot}`, { pool: this.pool.name });
        } catch (error) {
          const traceback = (error as { traceback?: string }).traceback;
          this.logger.error('server', `Django's static files could not be collected: ${(error as Error).message}; ${this.report ? 'the files collected before keep serving' : `${this.pool.app} is served without them`} (fix the error and save to try again)${traceback ? `\n${traceback.trimEnd()}` : ''}`, { pool: this.pool.name });
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private watchSources(): void {
    const inside = (this.report?.sources ?? []).map((s) => s.dir).filter((dir) => !path.relative(this.pool.cwd, dir).startsWith('..'));
    if (inside.length === 0) return;
    this.watcher = watchTrees([...new Set(inside)], () => true, () => void this.collect(), {
      onWarning: (message) => this.logger.warn('server', message, { pool: this.pool.name }),
    });
  }

  close(): void {
    this.watcher?.close();
  }
}
