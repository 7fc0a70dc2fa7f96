// What a detection means as a config: the raw config ServeStack serves when a folder has
// no servestack.json, and the commented starter `servestack init` writes. Both come from
// the same detection, and the starter, once parsed, serves what detection would have.
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { DEFAULTS } from './defaults';
import { detectFolder, DETECTION_SUMMARY, type Framework, type FolderDetection } from './detect';

/** The pool name detection gives the app. */
export const DETECTED_POOL = 'web';

interface RawRoute {
  path: string;
  static?: string;
  pool?: string;
}

export interface DetectedRawConfig {
  pools?: Record<string, { app: string; interface: string; reload?: boolean }>;
  routes: RawRoute[];
}

/** A folder as the config would name it: relative to the workspace, with forward slashes. */
function folderName(dir: string, folder: string): string {
  const rel = relative(dir, folder);
  return rel === '' ? '.' : rel.split(sep).join('/');
}

/**
 * The config a detection implies, or undefined when nothing servable was found.
 * `djangoStaticRoot`: the folder ServeStack collects a detected Django project's static
 * files into (server/devloop/djangoStatic.ts), served at its STATIC_URL.
 */
export function detectedRawConfig(found: FolderDetection, options: { djangoStaticRoot?: string } = {}): DetectedRawConfig | undefined {
  const app = found.candidates[0];
  if (app) {
    const routes: RawRoute[] = [];
    if (found.staticMount) routes.push({ path: found.staticMount.path, static: folderName(found.dir, found.staticMount.folder) });
    if (app.django?.staticUrl && options.djangoStaticRoot && !routes.some((r) => r.path === app.django?.staticUrl)) {
      routes.push({ path: app.django.staticUrl, static: options.djangoStaticRoot });
    }
    routes.push({ path: '/', pool: DETECTED_POOL });
    // A folder served with no config is served for development, where `flask run`,
    // `runserver` and `uvicorn --reload` all reload on save: so does this (and the
    // developer loop refreshes the pages after it).
    return { pools: { [DETECTED_POOL]: { app: app.target, interface: app.interface, reload: true } }, routes };
  }
  if (found.staticSite) return { routes: [{ path: '/', static: '.' }] };
  return undefined;
}

const j = JSON.stringify;

function venvPython(dir: string): string | undefined {
  const choices = ['.venv/bin/python', 'venv/bin/python', '.venv/Scripts/python.exe', 'venv/Scripts/python.exe'];
  return choices.find((p) => existsSync(join(dir, p)));
}

function routeLine(r: RawRoute): string {
  const target = r.static !== undefined ? `"static": ${j(r.static)}` : `"pool": ${j(r.pool)}`;
  return `{ "path": ${j(r.path)}, ${target} }`;
}

const FRAMEWORK_NAMES: Record<Framework, string> = {
  flask: 'a Flask app',
  fastapi: 'a FastAPI app',
  starlette: 'a Starlette app',
  factory: 'an app factory',
  wsgi: 'a WSGI application',
  asgi: 'an ASGI application',
};

/** The header comment: what was found, so the user can check the guess. */
function foundLines(found: FolderDetection): string[] {
  const where = (c: FolderDetection['candidates'][number]) => `${folderName(found.dir, c.file)}:${c.line}`;
  const [best, ...others] = found.candidates;
  if (best) {
    return [
      `// Detected ${FRAMEWORK_NAMES[best.framework]}, ${j(best.target)}, in ${where(best)}.`,
      ...others.slice(0, 4).map((c) => `// Also found ${j(c.target)} in ${where(c)}: put it in "app" to serve it instead.`),
    ];
  }
  if (found.staticSite) return ['// Detected a static site (index.html): the folder is served as files.'];
  return [
    `// No app was detected (looked for ${DETECTION_SUMMARY}).`,
    '// Set "app" below to your module:callable, e.g. "pkg.wsgi:application" or "app:create_app()".',
  ];
}

/** The commented JSONC starter config for a folder (what `servestack init` writes). */
export function starterConfigText(dir: string): string {
  const found = detectFolder(dir);
  const raw = detectedRawConfig(found) ?? { pools: { [DETECTED_POOL]: { app: 'app:app', interface: 'auto' } }, routes: [{ path: '/', pool: DETECTED_POOL }] };
  const out = [
    '// ServeStack: how to serve this folder. Hover a field for its documentation.',
    ...foundLines(found),
    '{',
    `  // Where to listen. Left out: ${DEFAULTS.listen} or the next free port. A port written here is used as is.`,
    `  // "listen": ${j(DEFAULTS.listen)},`,
  ];
  const pool = raw.pools?.[DETECTED_POOL];
  if (pool) {
    const python = venvPython(found.dir);
    out.push(
      '  "pools": {',
      '    // A pool of Python worker processes running the app (module:callable, as in Gunicorn).',
      `    ${j(DETECTED_POOL)}: {`,
      `      "app": ${j(pool.app)},`,
      `      "interface": ${j(pool.interface)}, // "wsgi", "asgi" or "auto"`,
      python
        ? `      "python": ${j(python)}, // left out: the editor's interpreter, else python3`
        : `      // "python": ".venv/bin/python", // left out: the editor's interpreter, else python3`,
      `      "workers": ${j(DEFAULTS.pythonPool.workers)},`,
      `      "timeout": ${j(DEFAULTS.poolTimeout)}, // a request running longer is stopped with 504`,
      '      "reload": true // restart the workers gracefully when a .py file changes',
      '    }',
      '  },',
    );
  }
  out.push(
    '  // Where each request goes; the longest matching path prefix wins, as in NGINX.',
    '  "routes": [',
    raw.routes.map((r) => `    ${routeLine(r)}`).join(',\n'),
    '  ],',
    '  // Limits on every request; these are the defaults.',
    '  "limits": {',
    `    "maxBodySize": ${j(DEFAULTS.limits.maxBodySize)},`,
    `    "headerTimeout": ${j(DEFAULTS.limits.headerTimeout)}`,
    '  }',
    '}',
    '',
  );
  return out.join('\n');
}
