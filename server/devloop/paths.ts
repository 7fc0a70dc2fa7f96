// Folders ServeStack owns for a served folder, beside the state files (control/stateFile.ts):
// user-only, outside the workspace (nothing to ignore in git, nothing the watchers see).
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { canonicalDir, stateDir } from '../control/stateFile';

/** Where a detected Django project's static files are collected (collectstatic's STATIC_ROOT). */
export function djangoStaticRoot(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(canonicalDir(dir)).digest('hex').slice(0, 16);
  return path.join(stateDir(env), 'django-static', hash);
}

/** djangoStaticRoot, created (0700) so the route that serves it resolves; undefined when it cannot be. */
export function ensureDjangoStaticRoot(dir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = djangoStaticRoot(dir, env);
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    return root;
  } catch {
    return undefined; // no state folder here: the project serves without its static files, as before
  }
}
