// The per-folder state file: how `servestack status|scale|reload|logs|stop` (and an editor
// attaching to a server it did not start) find the running server of a folder and its
// control token. It lives in a directory only the user can read, because the token steers
// the server.
//
//   Linux etc.: $XDG_RUNTIME_DIR/servestack, else ~/.servestack/run   (dir 0700, file 0600)
//   Windows:    %LOCALAPPDATA%\ServeStack\run                          (the user's profile ACL)
//
// The file name is a hash of the folder's absolute path, so one folder has one file.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ServeStackError } from '../errors';

export interface ServerState {
  pid: number;
  /** The absolute folder served. */
  dir: string;
  /** The proxy's URL, as printed by `serve`. */
  url: string;
  controlPort: number;
  token: string;
  /** Epoch ms. */
  startedAt: number;
  version: string;
}

export interface ReadServerState extends ServerState {
  /** The state file's path. */
  file: string;
  /** true when the pid no longer runs (or is not ours): the server died without cleaning up. */
  stale: boolean;
}

/** The user-only directory holding state files (not created by this call). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.platform === 'win32') {
    const base = env.LOCALAPPDATA || path.join(os.homedir(), 'AppData', 'Local');
    return path.join(base, 'ServeStack', 'run');
  }
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'servestack');
  return path.join(os.homedir(), '.servestack', 'run');
}

/** The canonical form of a folder path: absolute, symlinks resolved when it exists, case-folded on Windows. */
export function canonicalDir(dir: string): string {
  let abs = path.resolve(dir);
  try {
    abs = fs.realpathSync.native(abs);
  } catch (err) {
    // A folder that no longer exists still has a name: keep the resolved path.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return process.platform === 'win32' ? abs.toLowerCase() : abs;
}

export function stateFilePath(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(canonicalDir(dir)).digest('hex').slice(0, 32);
  return path.join(stateDir(env), `${hash}.json`);
}

/** Create the state directory (0700) or check that an existing one is ours and private. */
function ensureStateDir(env: NodeJS.ProcessEnv): string {
  const d = stateDir(env);
  fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return d;
  const st = fs.lstatSync(d);
  if (!st.isDirectory()) {
    throw new ServeStackError('CONTROL_STATE_FILE', `${d} is not a directory`, { hint: 'remove it; ServeStack recreates it' });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new ServeStackError('CONTROL_STATE_FILE', `${d} belongs to another user (uid ${st.uid})`, {
      hint: 'remove it, or set XDG_RUNTIME_DIR to a directory of your own',
    });
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(d, 0o700);
  return d;
}

/** Write the state file of `dir` atomically (a private temporary file renamed into place). */
export function writeServerState(dir: string, state: ServerState, env: NodeJS.ProcessEnv = process.env): string {
  ensureStateDir(env);
  const file = stateFilePath(dir, env);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, JSON.stringify({ ...state, dir: canonicalDir(state.dir) }, null, 2) + '\n');
    if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return file;
}

/** Whether a process with this pid runs and is ours to signal. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process. EPERM: a process of another user reuses the pid; ours is gone.
    return false;
  }
}

function isServerState(v: unknown): v is ServerState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.pid === 'number' &&
    typeof o.dir === 'string' &&
    typeof o.url === 'string' &&
    typeof o.controlPort === 'number' &&
    typeof o.token === 'string' &&
    typeof o.startedAt === 'number' &&
    typeof o.version === 'string'
  );
}

/**
 * The state of the server of `dir`, or undefined when no state file exists. A file whose
 * pid is not alive, or whose content is unreadable, comes back with `stale: true`.
 */
export function readServerState(dir: string, env: NodeJS.ProcessEnv = process.env): ReadServerState | undefined {
  return readStateFile(stateFilePath(dir, env), canonicalDir(dir));
}

function readStateFile(file: string, dir: string): ReadServerState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ServeStackError('CONTROL_STATE_FILE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // A torn or foreign file: nothing can be reached through it.
    parsed = undefined;
  }
  if (!isServerState(parsed)) {
    return { pid: 0, dir, url: '', controlPort: 0, token: '', startedAt: 0, version: '', file, stale: true };
  }
  return { ...parsed, file, stale: !pidAlive(parsed.pid) };
}

/** Remove the state file of `dir` if it names `pid` (a newer server's file is left alone). Returns whether it was removed. */
export function removeServerState(dir: string, pid: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const file = stateFilePath(dir, env);
  let state: unknown;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    // Unparseable: not provably ours, so left alone (readServerState reports it as stale).
    return false;
  }
  if (!isServerState(state) || state.pid !== pid) return false;
  fs.rmSync(file, { force: true });
  return true;
}

/**
 * Remove a state file that readServerState found stale — unless a new server has written
 * the file since (then it names another pid, or is valid and alive, and stays).
 */
export function removeStaleServerState(found: ReadServerState): boolean {
  if (!found.stale) return false;
  const again = readStateFile(found.file, found.dir);
  if (!again || !again.stale || again.pid !== found.pid) return false;
  fs.rmSync(again.file, { force: true });
  return true;
}
