// Finds what to serve in a folder that has no servestack.json: Python app objects and
// factories (by reading the source with regexes: importing the user's code to look would
// run it, and this runs on every editor load), a static folder, or a plain static site.
// Scans top-level *.py files and one level of packages, never environments or caches.
import { readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { InterfaceKind } from './types';

export type Framework = 'flask' | 'fastapi' | 'starlette' | 'factory' | 'wsgi' | 'asgi';

export interface StaticMount {
  path: string; // URL prefix, e.g. "/static/"
  folder: string; // absolute
}

/** A Django project behind a WSGI/ASGI module (django.core.*.get_*_application). */
export interface DjangoProject {
  /** From the module's DJANGO_SETTINGS_MODULE default, e.g. "mysite.settings". */
  settingsModule?: string;
  /** STATIC_URL as a URL path ("/static/"), read from the settings file; undefined when none or not a path. */
  staticUrl?: string;
}

export interface AppCandidate {
  target: string; // "app:app", "pkg.wsgi:application", "app:create_app()"
  interface: InterfaceKind;
  file: string; // absolute path of the module's file
  line: number; // 1-based line of the app object or factory
  framework: Framework;
  /** Flask's static folder (declared or the default "static" beside the module), when it exists. */
  static?: StaticMount;
  django?: DjangoProject;
}

export interface FolderDetection {
  dir: string;
  candidates: AppCandidate[]; // best first
  /** The folder to serve at its URL prefix next to the app, when there is one. */
  staticMount?: StaticMount;
  /** No app, but an index.html at the top: serve the folder itself. */
  staticSite: boolean;
}

/** What detection looks for, for messages that say so. */
export const DETECTION_SUMMARY =
  '"X = Flask(…)", "X = FastAPI(…)", "X = Starlette(…)", "def create_app(", or a module-level "application" ' +
  'in *.py files at the top of the folder and one folder down, and an index.html';

const SKIP_DIRS = new Set(['.venv', 'venv', 'env', 'node_modules', '.git', '__pycache__', 'site-packages', 'tests', 'test']);
const MAX_FILE_BYTES = 512 * 1024;
const IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_]*$/u;
const FRAMEWORK_OBJECT = /^([A-Za-z_]\w*)\s*(?::\s*[\w.[\], ]+)?=\s*(?:[\w.]+\.)?(Flask|FastAPI|Starlette)\s*\(/;
const FACTORY = /^(?:async\s+)?def\s+(create_app|make_app)\s*\(/;
const APPLICATION = /^(?:application\s*(?::[^=]+)?=(.*)|def\s+application\s*\()/;
const ASGI_IMPORT = /^\s*(?:from|import)\s+(?:fastapi|starlette|quart)\b/m;
const WSGI_IMPORT = /^\s*(?:from|import)\s+(?:flask|django|bottle|pyramid|falcon)\b/m;

/** The file names people give an entry point, most likely first (others rank after). */
const ENTRY_NAMES = ['app.py', 'main.py', 'wsgi.py', 'asgi.py', 'server.py', '__init__.py'];
const FRAMEWORK_RANK: Record<Framework, number> = { flask: 0, fastapi: 0, starlette: 0, factory: 1, wsgi: 2, asgi: 3 };

function isSkippedFile(name: string): boolean {
  return name.startsWith('test_') || name.endsWith('_test.py') || name === 'conftest.py' || name === 'setup.py';
}

function list(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return []; // an unreadable folder holds nothing we can serve; detection reports "nothing found"
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // missing or unreadable: not a folder we can serve
  }
}

function readSource(file: string): string | undefined {
  try {
    if (statSync(file).size > MAX_FILE_BYTES) return undefined; // generated or vendored; not an entry point
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // vanished or unreadable between listing and reading
  }
}

/** The Python files to scan with their module names: top level, then one package level down. */
function pythonFiles(dir: string): { file: string; module: string; depth: number }[] {
  const found: { file: string; module: string; depth: number }[] = [];
  const entries = list(dir);
  for (const e of entries) {
    if (e.isFile() && e.name.endsWith('.py') && !isSkippedFile(e.name)) {
      const module = e.name.slice(0, -3);
      if (IDENTIFIER.test(module)) found.push({ file: join(dir, e.name), module, depth: 0 });
    }
  }
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.') || SKIP_DIRS.has(e.name) || !IDENTIFIER.test(e.name)) continue;
    for (const f of list(join(dir, e.name))) {
      if (!f.isFile() || !f.name.endsWith('.py') || isSkippedFile(f.name)) continue;
      const leaf = f.name.slice(0, -3);
      if (leaf !== '__init__' && !IDENTIFIER.test(leaf)) continue;
      found.push({ file: join(dir, e.name, f.name), module: leaf === '__init__' ? e.name : `${e.name}.${leaf}`, depth: 1 });
    }
  }
  return found;
}

/** The text of a call starting at `from` (an index at or before its "("), to its closing paren. */
function callText(source: string, from: number): string {
  const open = source.indexOf('(', from);
  let depth = 0;
  for (let i = open; i < source.length && i < open + 4000; i++) {
    if (source[i] === '(') depth++;
    else if (source[i] === ')' && --depth === 0) return source.slice(open, i + 1);
  }
  return source.slice(open, open + 4000);
}

function stringArg(call: string, name: string): string | null | undefined {
  const m = new RegExp(`\\b${name}\\s*=\\s*(?:(['"])(.*?)\\1|(None)\\b)`).exec(call);
  if (!m) return undefined;
  return m[3] ? null : m[2];
}

/** Flask serves `static_folder` (default "static", beside the module) at `static_url_path`. */
function flaskStatic(file: string, call: string): StaticMount | undefined {
  const folderArg = stringArg(call, 'static_folder');
  if (folderArg === null) return undefined; // static_folder=None: the app serves no static files
  const folderRel = folderArg ?? 'static';
  const folder = resolve(dirname(file), folderRel);
  if (!isDirectory(folder)) return undefined;
  let path = stringArg(call, 'static_url_path') ?? `/${basename(folderRel)}`;
  if (!path.startsWith('/')) path = `/${path}`;
  if (!path.endsWith('/')) path = `${path}/`;
  return { path, folder };
}

const DJANGO_APPLICATION = /\bfrom\s+django\.core\.(?:wsgi|asgi)\s+import\b|\bget_(?:wsgi|asgi)_application\s*\(/;
const SETTINGS_MODULE = /DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]/;
const STATIC_URL = /^STATIC_URL\s*=\s*(?:[rRuU]?)(['"])([^'"]*)\1/m;

/** Django's settings as far as a regex can read them: the settings module, and STATIC_URL from its file. */
export function djangoProject(root: string, source: string): DjangoProject | undefined {
  if (!DJANGO_APPLICATION.test(source)) return undefined;
  const settingsModule = SETTINGS_MODULE.exec(source)?.[1];
  if (!settingsModule) return {};
  const settings = readSource(join(root, ...settingsModule.split('.')) + '.py') ?? readSource(join(root, ...settingsModule.split('.'), '__init__.py'));
  const written = settings === undefined ? undefined : STATIC_URL.exec(settings)?.[2];
  // An absolute URL (a CDN) is not served here; Django prefixes a relative one with "/".
  if (written === undefined || written === '' || /^[a-z][a-z0-9+.-]*:|^\/\//i.test(written)) return { settingsModule };
  const staticUrl = `${written.startsWith('/') ? '' : '/'}${written}${written.endsWith('/') ? '' : '/'}`;
  return { settingsModule, staticUrl };
}

function scanFile(file: string, module: string, root: string): AppCandidate[] {
  const source = readSource(file);
  if (source === undefined) return [];
  const found: AppCandidate[] = [];
  const lines = source.split(/\r?\n/);
  let offset = 0;
  lines.forEach((text, i) => {
    const line = i + 1;
    const object = FRAMEWORK_OBJECT.exec(text);
    if (object) {
      const framework = object[2].toLowerCase() as Framework;
      const flask = framework === 'flask';
      const staticMount = flask ? flaskStatic(file, callText(source, offset + object[0].length - 1)) : undefined;
      found.push({
        target: `${module}:${object[1]}`,
        interface: flask ? 'wsgi' : 'asgi',
        file,
        line,
        framework,
        ...(staticMount ? { static: staticMount } : {}),
      });
    }
    const factory = FACTORY.exec(text);
    if (factory) {
      const kind: InterfaceKind = ASGI_IMPORT.test(source) ? 'asgi' : WSGI_IMPORT.test(source) ? 'wsgi' : 'auto';
      found.push({ target: `${module}:${factory[1]}()`, interface: kind, file, line, framework: 'factory' });
    }
    const application = APPLICATION.exec(text);
    if (application) {
      // Django writes both wsgi.py and asgi.py; asgi.py's application is an ASGI app.
      const asgi = basename(file) === 'asgi.py' || /asgi/i.test(application[1] ?? '');
      const django = djangoProject(root, source);
      found.push({ target: `${module}:application`, interface: asgi ? 'asgi' : 'wsgi', file, line, framework: asgi ? 'asgi' : 'wsgi', ...(django ? { django } : {}) });
    }
    offset += text.length + (source[offset + text.length] === '\r' ? 2 : 1);
  });
  return found;
}

function entryRank(file: string): number {
  const i = ENTRY_NAMES.indexOf(basename(file));
  return i < 0 ? ENTRY_NAMES.length : i;
}

/** App candidates in the folder, best first: top level before packages, then by file name and kind. */
export function detectApp(dir: string): AppCandidate[] {
  const root = resolve(dir);
  const scored = pythonFiles(root).flatMap(({ file, module, depth }) =>
    scanFile(file, module, root).map((c) => ({ c, key: [depth, entryRank(file), FRAMEWORK_RANK[c.framework]] })),
  );
  scored.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return a.key[i] - b.key[i];
    return a.c.file < b.c.file ? -1 : a.c.file > b.c.file ? 1 : a.c.line - b.c.line;
  });
  // "application = Flask(…)" matches twice (as a Flask object and as a WSGI application): keep the better.
  const seen = new Set<string>();
  return scored.map((s) => s.c).filter((c) => !seen.has(c.target) && seen.add(c.target));
}

/** Everything detection knows about a folder: the apps, a static folder, or a static site. */
export function detectFolder(dir: string): FolderDetection {
  const root = resolve(dir);
  const candidates = detectApp(root);
  const topStatic = join(root, 'static');
  // A Django project's static files come from its finders (the loader's collectstatic route), not the folder.
  const staticMount = candidates[0]?.static ?? (isDirectory(topStatic) && !candidates[0]?.django?.staticUrl ? { path: '/static/', folder: topStatic } : undefined);
  const staticSite = candidates.length === 0 && list(root).some((e) => e.isFile() && /^index\.html?$/i.test(e.name));
  return { dir: root, candidates, ...(staticMount && candidates.length > 0 ? { staticMount } : {}), staticSite };
}
