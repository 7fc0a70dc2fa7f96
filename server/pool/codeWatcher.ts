// Watches a workspace's Python files for "reload": true. OS events (fs.watch) on each
// folder, never polling; folders that hold no app code (.venv, node_modules, .git,
// __pycache__, ServeStack's own state) are never entered, so a watcher cannot pin a
// core or trigger itself; a burst of saves becomes one reload after a quiet period.
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export const IGNORED_DIRS = new Set(['.venv', 'venv', 'env', 'node_modules', '.git', '__pycache__', '.servestack', '.mypy_cache', '.pytest_cache', '.tox', 'dist', 'build']);
const MAX_DIRS = 2000;

export interface CodeWatcher {
  close(): void;
}

export function watchPythonSources(
  root: string,
  onChange: (files: string[]) => void,
  options: { debounceMs?: number; onWarning?: (message: string) => void; extensions?: string[] } = {},
): CodeWatcher {
  const debounceMs = options.debounceMs ?? 300;
  const extensions = options.extensions ?? ['.py'];
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
        if (extensions.some((ext) => full.endsWith(ext))) {
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

  scan(root);
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
