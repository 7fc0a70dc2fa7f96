// What every on-demand run (bench, soak) does around its work: notice a build older than
// the sources it measures, and keep a temp dir that is removed — with every process group
// the run started — however the run ends (exit, Ctrl-C, SIGTERM, SIGHUP).
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killAllGroupsNow } from './procs.mjs';

/** Files under REPO/server newer than the build at `cli` (all of them when there is no build). */
export function sourcesNewerThan(cli, repo) {
  let buildMtime = NaN;
  try {
    buildMtime = statSync(cli).mtimeMs;
  } catch {
    // no build: every comparison below is false, as before
  }
  const newer = [];
  (function walk(dir) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|py|json)$/.test(e.name) && statSync(p).mtimeMs > buildMtime) newer.push(path.relative(repo, p));
    }
  })(path.join(repo, 'server'));
  return newer;
}

/** A temp dir for the run; `cleanupNow()` kills what the run started and removes it (once). */
export function guardRun({ prefix, keepTmp, log }) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  let cleaned = false;
  const cleanupNow = () => {
    if (cleaned) return;
    cleaned = true;
    killAllGroupsNow();
    if (keepTmp) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      log(`${sig}: stopping everything this run started`);
      cleanupNow();
      process.exit(130);
    });
  }
  return { tmp, cleanupNow };
}
