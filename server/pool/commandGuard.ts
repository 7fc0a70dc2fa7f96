// Runs a command pool's program and makes sure it dies with the server. The program
// (often `npm run dev`, a shell with children of its own) runs in a process group of
// its own; this guard holds a pipe from the server on stdin and ends the whole group
// when the pipe closes — the server stopped, crashed or was killed with -9 — or when
// it is asked to stop. Spawned as `node commandGuard.js "<command>"`.
import { spawn, spawnSync } from 'node:child_process';

const command = process.argv[2];
if (!command) {
  process.stderr.write('commandGuard: no command given\n');
  process.exit(3);
}

const child = spawn(command, {
  shell: true,
  stdio: ['ignore', 'inherit', 'inherit'],
  detached: process.platform !== 'win32',
  windowsHide: true,
});

function endGroup(signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    if (process.platform === 'win32') spawnSync('taskkill', ['/T', '/F', '/PID', String(child.pid)], { windowsHide: true });
    else process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  endGroup('SIGTERM');
  setTimeout(() => {
    endGroup('SIGKILL');
    process.exit(0);
  }, 2000).unref();
}

process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
child.on('error', (error) => {
  process.stderr.write(`could not run ${command}: ${error.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  // The group may still hold children of the shell: end them too.
  endGroup('SIGTERM');
  process.exit(stopping ? 0 : code ?? (signal ? 128 : 1));
});
