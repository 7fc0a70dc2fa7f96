// `servestack dashboard [--dir DIR] [--url]`: open the running server's dashboard in the
// default browser, or print its URL. The URL carries the token once (the page exchanges
// it for a session cookie and drops it from the address bar); it is printed only to the
// user who asked, never logged.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { DASHBOARD_PATH } from './auth';
import { canonicalDir, readServerState, removeStaleServerState } from './stateFile';

export const DASHBOARD_USAGE = 'servestack dashboard [--dir DIR] [--url]  open the running server\'s dashboard in the browser (--url: print its URL)';

export function dashboardUrl(controlPort: number, token: string): string {
  return `http://127.0.0.1:${controlPort}${DASHBOARD_PATH}?token=${token}`;
}

/** The platform's "open this URL" program. */
function opener(url: string): { command: string; args: string[] } {
  if (process.platform === 'darwin') return { command: 'open', args: [url] };
  if (process.platform === 'win32') return { command: 'cmd', args: ['/c', 'start', '""', url.replace(/&/g, '^&')] };
  return { command: 'xdg-open', args: [url] };
}

function openBrowser(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const { command, args } = opener(url);
    const child = spawn(command, args, { stdio: 'ignore', detached: true, windowsHide: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

export async function runDashboardVerb(args: string[], io: { out: (s: string) => void; err: (s: string) => void; env?: NodeJS.ProcessEnv }): Promise<number> {
  let values: { dir?: string; url?: boolean };
  try {
    ({ values } = parseArgs({ args, allowPositionals: false, options: { dir: { type: 'string' }, url: { type: 'boolean' } } }));
  } catch (error) {
    io.err(`${(error as Error).message}\nusage: ${DASHBOARD_USAGE}`);
    return 2;
  }
  const dir = canonicalDir(values.dir ?? '.');
  const found = readServerState(dir, io.env);
  if (!found || found.stale) {
    if (found?.stale) removeStaleServerState(found);
    io.err(`no ServeStack server runs for ${dir}; start one with \`servestack serve\`, then run \`servestack dashboard\` again`);
    return 1;
  }
  const url = dashboardUrl(found.controlPort, found.token);
  if (values.url) {
    io.out(url);
    return 0;
  }
  if (await openBrowser(url)) {
    io.out(`opened the dashboard of ${dir} in the browser`);
    return 0;
  }
  io.err(`could not open a browser (no ${opener(url).command}); open this URL yourself:`);
  io.out(url);
  return 1;
}
