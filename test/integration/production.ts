// The exported stack for tests: `servestack export` through the CLI, then real NGINX and
// Gunicorn from Debian packages, started in the export folder as the current user on
// 127.0.0.1, and stopped by pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort, portAccepts } from '../../server/pool/commandPool';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, eventually } from './harness';

export const NGINX = '/usr/sbin/nginx';
export const GUNICORN = '/usr/bin/gunicorn';

/** Why the production tests cannot run here, or undefined when they can. */
export function productionMissing(): string | undefined {
  if (!existsSync(NGINX)) return `${NGINX} is not installed (apt-get install nginx-light)`;
  if (!existsSync(GUNICORN)) return `${GUNICORN} is not installed (apt-get install gunicorn)`;
  return undefined;
}

export { freePort };

export function runCli(args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function exportTo(dir: string, out: string, args: string[] = []): string {
  const r = runCli(['export', dir, '--out', out, ...args]);
  if (r.code !== 0) throw new Error(`servestack export failed (${r.code}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `nginx -t` as this user, with the export as prefix. */
export function nginxTest(out: string): { ok: boolean; output: string } {
  const r = spawnSync(NGINX, ['-t', '-p', out, '-c', 'nginx.conf'], { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export function gunicornCheck(cwd: string, conf: string): { ok: boolean; output: string } {
  const r = spawnSync(GUNICORN, ['--check-config', '-c', conf], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface Started {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function start(command: string, args: string[], cwd: string, stopSignal: NodeJS.Signals): Started {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => text,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(stopSignal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Gunicorn with the exported config; `bind` overrides the file's (a second instance). */
export async function startGunicorn(cwd: string, conf: string, port: number, bind?: string): Promise<Started> {
  const g = start(GUNICORN, ['-c', conf, ...(bind ? ['-b', bind] : [])], cwd, 'SIGTERM');
  try {
    await eventually(async () => (g.child.exitCode !== null ? Promise.reject(new Error(`gunicorn exited: ${g.output()}`)) : portAccepts(port)), 20_000, `gunicorn on ${port}`);
  } catch (error) {
    await g.stop();
    throw error;
  }
  return g;
}

/** NGINX in the foreground (daemon off), so its master pid is the child's. */
export async function startNginx(out: string, port: number): Promise<Started> {
  // Started by root, NGINX would run its workers as "nobody", who cannot read a private temp
  // folder: the workers stay the current user, as they are when a non-root user starts it.
  const globals = process.getuid?.() === 0 ? 'daemon off; user root;' : 'daemon off;';
  const n = start(NGINX, ['-p', out, '-c', 'nginx.conf', '-g', globals], out, 'SIGTERM');
  try {
    await eventually(async () => (n.child.exitCode !== null ? Promise.reject(new Error(`nginx exited: ${n.output()}${readLog(out)}`)) : portAccepts(port)), 20_000, `nginx on ${port}`);
  } catch (error) {
    await n.stop();
    throw error;
  }
  return n;
}

export function readLog(out: string): string {
  try {
    return readFileSync(path.join(out, 'logs', 'error.log'), 'utf8');
  } catch {
    return '';
  }
}
