// How the server's Node is started: V8 flags and a glibc malloc setting, read from
// nodeLaunch.json by the CLI's first line (esbuild.mjs), the extension and the bench.
// Why each (bench/RESULTS.md): a young generation of at most 3 × 4 MiB; no pretenuring
// (under load it moved each request's short-lived objects into the old generation); one
// V8 helper thread instead of four, on a machine whose cores the workers need anyway; and
// at most two malloc arenas, not one for each thread that ever allocated. The last two
// took 5–6 MiB off the front's RSS after load at the same requests per second.
//
// The malloc setting is for the front alone: glibc reads it when the process starts, so
// the server puts the user's value back (restoreUserEnv) before it starts any worker or
// command. Beside each variable the launcher sets SERVESTACK_WAS_<NAME> to what it was.
import LAUNCH from './nodeLaunch.json';

export const SERVER_NODE_FLAGS: readonly string[] = LAUNCH.nodeFlags;
const SERVER_ENV: Readonly<Record<string, string>> = LAUNCH.env;

function wasName(name: string): string {
  return `SERVESTACK_WAS_${name}`;
}

/** The environment to start the server's Node with, from the one it would otherwise get. */
export function serverLaunchEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(SERVER_ENV)) {
    env[wasName(name)] = base[name] ?? '';
    env[name] = value;
  }
  return env;
}

/**
 * Puts back what the launch settings replaced. An empty old value means the variable was
 * not set; so does "${NAME}" left as written, which is what npm's Windows shim makes of
 * the CLI's first line.
 */
export function restoreUserEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of Object.keys(SERVER_ENV)) {
    const old = env[wasName(name)];
    if (old === undefined) continue;
    delete env[wasName(name)];
    if (old === '' || old === `\${${name}}`) delete env[name];
    else env[name] = old;
  }
}
