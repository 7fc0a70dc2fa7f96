// Real servers for integration tests: `node dist/cli.js serve` as a child process on
// 127.0.0.1 with a free port, its output collected, stopped by pid in `finally`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

const pythonCache = new Map<string, string | undefined>();
/** An interpreter that can import every module named, or undefined (the caller skips with a reason). */
export function findPython(modules: string[] = []): string | undefined {
  const key = modules.join(',');
  if (pythonCache.has(key)) return pythonCache.get(key);
  const candidates = ['/usr/bin/python3', 'python3', 'python'];
  let found: string | undefined;
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', modules.map((m) => `import ${m}`).join('; ') || 'pass'], { timeout: 10000 });
    if (probe.status === 0) {
      found = candidate;
      break;
    }
  }
  pythonCache.set(key, found);
  return found;
}

export function tempCopy(source: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'servestack-test-'));
  cpSync(source, dir, { recursive: true });
  return dir;
}

export function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'servestack-test-'));
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output(): string;
  /** Resolves when `text` (or a match of the pattern) has appeared in the output. */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  runtimeDir: string;
}

/** `byFirstLine`: run dist/cli.js itself, as a user's shell does (its #! line picks node, flags and environment). */
export async function serve(dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, { byFirstLine = false } = {}): Promise<ServeProcess> {
  const runtimeDir = mkdtempSync(path.join(os.tmpdir(), 'servestack-run-'));
  const serveArgs = ['serve', dir, '--port', '0', ...args];
  const child = spawn(byFirstLine ? CLI : process.execPath, byFirstLine ? serveArgs : [CLI, ...serveArgs], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited: number | null | undefined;
  const exitPromise = new Promise<number | null>((resolve) => child.on('exit', (code) => { exited = code; for (const w of waiters) w(); resolve(code); }));

  const waitFor = (pattern: string | RegExp, timeoutMs = 15000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = typeof pattern === 'string' ? (text.includes(pattern) ? pattern : null) : pattern.exec(text)?.[0];
        if (m) {
          done();
          resolve(m);
        } else if (exited !== undefined) {
          done();
          reject(new Error(`server exited (${exited}) before printing ${pattern}; output:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${pattern}; output:\n${text}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (exited !== undefined) return exited;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    const code = await exitPromise;
    clearTimeout(timer);
    rmSync(runtimeDir, { recursive: true, force: true });
    return code;
  };

  try {
    const line = await waitFor(/serving .* at (https?:\/\/[^ ]+)/);
    const url = /at (https?:\/\/[^ ]+)/.exec(line)![1];
    return { child, url, port: Number(new URL(url).port), output: () => text, waitFor, stop, runtimeDir };
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export function request(url: string, options: http.RequestOptions & { body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls until fn returns a truthy value or the time is up. */
type Falsy = undefined | null | false | 0 | '';
export async function eventually<T>(fn: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value as T;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Python processes whose command line mentions the folder: the no-orphans check. */
export function pythonProcessesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of require('node:fs').readdirSync('/proc') as string[]) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = require('node:fs').readFileSync(`/proc/${entry}/cmdline`, 'utf8') as string;
      if (cmd.includes('servestack_worker') && cmd.includes(dir)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
