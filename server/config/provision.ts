// The provision step of a config change: what can be checked synchronously about the
// parts the change starts, before anything is swapped. A check that fails here keeps the
// running config serving whole; one that passes leaves only what no check can know
// (whether the app imports) to the worker boot, where a rolling reload that fails keeps
// the old workers.
//
// The config checks (resolve.ts) already made sure the named files existed when the text
// was read; these look again at what a start would use, and at what they cannot see: a
// `python` looked up on PATH, an interpreter that is not executable, an env file that
// cannot be read, a static folder removed since.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { JSONPath } from 'jsonc-parser';
import type { ErrorCode } from '../errors';
import type { ConfigPlan } from './apply';
import type { PoolConfig, ServeConfig } from './types';

export interface ProvisionProblem {
  code: ErrorCode;
  message: string;
  /** Where in servestack.json the fix goes. */
  path: JSONPath;
}

export interface ProvisionContext {
  /** The interpreter of pools that name none (the editor's, --python, else python3). */
  defaultPython: string;
  /** The PATH a worker's interpreter is looked up on when the pool sets none. */
  envPath?: string;
}

export function checkProvision(next: ServeConfig, plan: ConfigPlan, ctx: ProvisionContext): ProvisionProblem[] {
  const problems: ProvisionProblem[] = [];
  const starting = new Set(plan.pools.filter((c) => c.action === 'start' || c.action === 'replace' || c.action === 'reload').map((c) => c.name));
  for (const name of starting) {
    const cfg = next.pools[name];
    if (!cfg) continue;
    checkEnvFile(cfg, problems);
    if (cfg.kind === 'python') checkInterpreter(cfg.name, cfg.python, cfg.cwd, cfg.env.PATH ?? ctx.envPath ?? process.env.PATH ?? '', ctx.defaultPython, problems);
  }
  if (plan.routesChanged) {
    for (const route of next.routes) {
      if (route.kind !== 'static') continue;
      let isDir = false;
      try {
        isDir = statSync(route.root).isDirectory();
      } catch {
        // missing or unreadable: reported just below
      }
      if (!isDir) {
        problems.push({
          code: 'CONFIG_STATIC_MISSING',
          message: `the static folder of route "${route.path}" is gone (${route.root}); create it or fix the path`,
          path: route.index >= 0 ? ['routes', route.index, 'static'] : ['routes'],
        });
      }
    }
  }
  return problems;
}

function checkEnvFile(cfg: PoolConfig, problems: ProvisionProblem[]): void {
  if (!cfg.envFile) return;
  try {
    if (!statSync(cfg.envFile).isFile()) throw new Error('not a file');
    accessSync(cfg.envFile, constants.R_OK);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    problems.push({
      code: 'CONFIG_PATH_MISSING',
      message: `the env file of pool "${cfg.name}" cannot be read (${cfg.envFile}: ${why}); fix the path or its permissions, or remove "envFile"`,
      path: ['pools', cfg.name, 'envFile'],
    });
  }
}

function checkInterpreter(pool: string, named: string | undefined, cwd: string, envPath: string, defaultPython: string, problems: ProvisionProblem[]): void {
  const python = named ?? defaultPython;
  const found = findExecutable(python, cwd, envPath);
  if (found.ok) return;
  const which = named ? `the interpreter "${named}"` : `the default interpreter "${defaultPython}" (the pool sets no "python")`;
  problems.push({
    code: 'PYTHON_NOT_FOUND',
    message: `pool "${pool}": ${which} ${found.why}; set "python" to an interpreter (e.g. ".venv/bin/python"), or install it`,
    path: named ? ['pools', pool, 'python'] : ['pools', pool],
  });
}

/** Where spawn would find `command`: a path (relative to cwd) or a name on PATH; and why not. */
export function findExecutable(command: string, cwd: string, envPath: string): { ok: true; file: string } | { ok: false; why: string } {
  const executable = (file: string): boolean => {
    try {
      if (!statSync(file).isFile()) return false;
      if (process.platform !== 'win32') accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (/[\\/]/.test(command)) {
    const file = path.resolve(cwd, command);
    if (executable(file)) return { ok: true, file };
    let exists = false;
    try {
      exists = statSync(file).isFile();
    } catch {
      // reported as missing
    }
    return { ok: false, why: exists ? `(${file}) is not executable` : `(${file}) does not exist` };
  }
  const extensions = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of extensions) {
      const file = path.join(dir, command + ext);
      if (executable(file)) return { ok: true, file };
    }
  }
  return { ok: false, why: 'was not found on PATH' };
}
