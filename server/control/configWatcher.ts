// Watch the config file for hot config. Editors often save by writing a temporary file and
// renaming it over the original, which ends a watch on the file itself, so the folder is
// watched and events are filtered by name. Bursts of events (an editor's write, chmod and
// rename) are debounced into one read; a read whose text equals the last one is skipped,
// so a touch or an identical save applies nothing. onChange calls never overlap: a change
// during one is read again when it has finished. The watcher never throws and never
// crashes the server; its errors go to onError.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ConfigWatcherOptions {
  /** Quiet time after the last event before the file is read (default 100 ms). */
  debounceMs?: number;
  /** The text the server runs now; a change back to it is skipped. Default: the file's text at start. */
  initialText?: string;
  /** The watcher's own failures (the folder vanished, a read failed, onChange threw). */
  onError?: (err: Error) => void;
}

export interface ConfigWatcher {
  close(): void;
}

const REWATCH_DELAY_MS = 1000;

export function watchConfigFile(
  file: string,
  onChange: (text: string) => void | Promise<unknown>,
  options: ConfigWatcherOptions | ((err: Error) => void) = {},
): ConfigWatcher {
  const opts: ConfigWatcherOptions = typeof options === 'function' ? { onError: options } : options;
  const debounceMs = opts.debounceMs ?? 100;
  const report = (err: unknown): void => {
    try {
      opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // The error reporter itself failed: there is nowhere left to report to.
    }
  };
  const abs = path.resolve(file);
  const folder = path.dirname(abs);
  const name = path.basename(abs);

  let last: string | undefined = opts.initialText;
  if (last === undefined) {
    try {
      last = fs.readFileSync(abs, 'utf8');
    } catch (err) {
      // Absent at start: its creation will be a change.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') report(err);
    }
  }

  let closed = false;
  let watcher: fs.FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let rewatch: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;

  async function check(): Promise<void> {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      let text: string;
      try {
        text = await fs.promises.readFile(abs, 'utf8');
      } catch (err) {
        // Between an editor's unlink and rename the file may be missing; the rename brings another event.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') report(err);
        return;
      }
      if (closed || text === last) return;
      last = text;
      try {
        await onChange(text);
      } catch (err) {
        report(err);
      }
    } finally {
      running = false;
      if (again && !closed) {
        again = false;
        void check();
      }
    }
  }

  function schedule(): void {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      void check();
    }, debounceMs);
  }

  function start(): void {
    if (closed) return;
    try {
      watcher = fs.watch(folder, { persistent: false }, (_event, changed) => {
        // Some platforms do not name the file; then any change in the folder is checked.
        if (changed === null || changed === undefined || changed.toString() === name) schedule();
      });
      watcher.on('error', (err) => {
        report(err);
        restart();
      });
      // Changes made while no watcher ran (after an error) are caught up on.
      schedule();
    } catch (err) {
      report(err);
      restart();
    }
  }

  function restart(): void {
    watcher?.close();
    watcher = undefined;
    if (closed || rewatch) return;
    rewatch = setTimeout(() => {
      rewatch = undefined;
      start();
    }, REWATCH_DELAY_MS);
    rewatch.unref();
  }

  start();

  return {
    close() {
      closed = true;
      if (debounce) clearTimeout(debounce);
      if (rewatch) clearTimeout(rewatch);
      watcher?.close();
      watcher = undefined;
    },
  };
}
