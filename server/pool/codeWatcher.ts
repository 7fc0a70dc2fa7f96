// Watches a workspace's Python files for "reload": true. OS events (fs.watch) on each
// folder, never polling; folders that hold no app code (.venv, node_modules, .git,
// __pycache__, ServeStack's own state) are never entered, so a watcher cannot pin a
// core or trigger itself; a burst of saves becomes one reload after a quiet period.
// What counts as the app's code: .py files, every file in a template folder (any folder
// named templates/ or jinja2/, as Flask, Jinja and Django's app loaders find them, and
// the folders a framework reports, such as Django's TEMPLATES DIRS), and the paths the
// config names in "dev.watch".
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export const IGNORED_DIRS = new Set(['.venv', 'venv', 'env', 'node_modules', '.git', '__pycache__', '.servestack', '.mypy_cache', '.pytest_cache', '.tox', 'dist', 'build']);
const MAX_DIRS = 2000;

export interface CodeWatcher {
  close(): void;
}

export interface WatchOptions {
  debounceMs?: number;
  onWarning?: (message: string) => void;
}

/** Folders named like this hold templates that the app renders (Flask, Jinja's loaders, Django's APP_DIRS). */
export const TEMPLATE_FOLDER_NAMES = new Set(['templates', 'jinja2']);

export function watchPythonSources(
  root: string,
  onChange: (files: string[]) => void,
  options: WatchOptions & { extensions?: string[] } = {},
): CodeWatcher {
  const extensions = options.extensions ?? ['.py'];
  return watchTrees([root], (file) => extensions.some((ext) => file.endsWith(ext)), onChange, options);
}

function isUnder(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * A pool's sources: .py files and template folders under `cwd`, plus `templateDirs`
 * (absolute, anywhere) and `extra` ("dev.watch": absolute files or folders).
 */
export function watchPoolSources(
  cwd: string,
  more: { templateDirs?: string[]; extra?: string[] },
  onChange: (files: string[]) => void,
  options: WatchOptions = {},
): CodeWatcher {
  const templateDirs = more.templateDirs ?? [];
  const extra = more.extra ?? [];
  const accept = (file: string): boolean => {
    const name = path.basename(file);
    // Editors' swap and backup files (.x.swp, x~, .#x) are not a save of the template.
    if (name.startsWith('.') || name.endsWith('~')) return false;
    if (file.endsWith('.py')) return true;
    if (extra.some((p) => isUnder(file, p)) || templateDirs.some((d) => isUnder(file, d))) return true;
    if (!isUnder(file, cwd)) return false;
    const folders = path.relative(cwd, path.dirname(file)).split(path.sep);
    return folders.some((name) => TEMPLATE_FOLDER_NAMES.has(name));
  };
  const roots = [cwd];
  for (const p of [...templateDirs, ...extra]) {
    let dir = p;
    try {
      if (!statSync(p).isDirectory()) dir = path.dirname(p);
    } catch {
      dir = path.dirname(p); // not there yet: its folder sees it appear
    }
    if (!roots.some((r) => isUnder(dir, r))) roots.push(dir);
  }
  return watchTrees(roots, accept, onChange, options);
}

/** Watches every folder below each root; `accept` says which changed files count. */
export function watchTrees(
  rootList: string[],
  accept: (file: string) => boolean,
  onChange: (files: string[]) => void,
  options: WatchOptions = {},
): CodeWatcher {
  const root = rootList.join(', ');
  const debounceMs = options.debounceMs ?? 300;
  const watchers = new Map<string, FSWatcher>();
  let changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let warned = false;

  const fire = () => {
    timer = undefined;
    const files = [...changed];
    changed = new Set();
    if (files.length && !closed) onChange(files);
  };

  const addDir = (dir: string) => {
    if (closed || watchers.has(dir)) return;
    if (watchers.size >= MAX_DIRS) {
      if (!warned) options.onWarning?.(`more than ${MAX_DIRS} folders under ${root}; changes deeper in are not watched`);
      warned = true;
      return;
    }
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (_event, name) => {
        if (!name) return;
        const full = path.join(dir, name.toString());
        if (accept(full)) {
          changed.add(full);
          if (timer) clearTimeout(timer);
          timer = setTimeout(fire, debounceMs);
        } else if (!IGNORED_DIRS.has(name.toString()) && !name.toString().startsWith('.')) {
          // Maybe a new folder: watch it too (addDir ignores what is not a folder).
          scan(full);
        }
      });
    } catch {
      return; // not a folder, or gone already
    }
    watcher.on('error', () => {
      watcher.close();
      watchers.delete(dir);
    });
    watchers.set(dir, watcher);
  };

  const scan = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    addDir(dir);
    for (const entry of entries) {
      if (entry.isDirectory() && !IGNORED_DIRS.has(entry.name) && !entry.name.startsWith('.')) scan(path.join(dir, entry.name));
    }
  };

  for (const r of rootList) scan(r);
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
