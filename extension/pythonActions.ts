// Code actions in Python files, read from the source line by line (importing the user's
// code to look would run it):
// - on a Flask `@app.route('/x')` / `@bp.route` or a FastAPI `@app.get('/x')` decorator:
//   "Add a ServeStack route for '/x'" (a pool route in servestack.json);
// - on `Flask(__name__, static_folder=...)`: "Serve this static folder from the proxy";
// - on an app object in a folder without servestack.json: "Create servestack.json for this app".
// Edits to servestack.json go through jsonc-parser's modify, so comments and formatting stay.
import * as path from 'node:path';
import * as vscode from 'vscode';
import * as jsonc from 'jsonc-parser';
import { starterConfigText } from '../server/config';
import { applyModify, configUri, modifyEdit, readText, routesInText } from './configFile';

const ROUTE_DECORATOR = /^\s*@\s*([A-Za-z_][\w.]*)\.(route|get|post|put|patch|delete|head|options|api_route|websocket)\(\s*(?:path\s*=\s*|rule\s*=\s*)?[rRuU]?(['"])(.*?)\3/;
const FLASK_CONSTRUCTOR = /\bFlask\(([^)]*)\)?/;
const APP_OBJECT = /^([A-Za-z_]\w*)\s*(?::\s*[\w.[\], ]+)?=\s*(?:[\w.]+\.)?(Flask|FastAPI|Starlette|Quart|get_wsgi_application|get_asgi_application)\s*\(/;
const FACTORY = /^(?:async\s+)?def\s+(create_app|make_app)\s*\(/;

export interface RouteDecorator { path: string; object: string; method: string }

/** `@app.route('/users/<int:id>')` → { path: '/users/<int:id>', ... } */
export function matchRouteDecorator(line: string): RouteDecorator | undefined {
  const m = ROUTE_DECORATOR.exec(line);
  if (!m || !m[4].startsWith('/')) return undefined;
  return { object: m[1], method: m[2], path: m[4] };
}

/** The prefix ServeStack routes for a framework path: parameters cut off at the last '/' before them. */
export function routePrefix(frameworkPath: string): string {
  const param = frameworkPath.search(/[<{]/);
  if (param < 0) return frameworkPath;
  return frameworkPath.slice(0, frameworkPath.lastIndexOf('/', param) + 1) || '/';
}

/** `Flask(__name__, static_folder='assets', static_url_path='/a')` → its static folder and URL path. */
export function matchFlaskStatic(line: string): { folder: string; urlPath: string; declared: boolean } | undefined {
  const m = FLASK_CONSTRUCTOR.exec(line);
  if (!m) return undefined;
  const args = m[1];
  const folderArg = /static_folder\s*=\s*(None|[rRuU]?(['"])(.*?)\2)/.exec(args);
  if (folderArg?.[1] === 'None') return undefined;
  const folder = folderArg?.[3] ?? 'static';
  const urlArg = /static_url_path\s*=\s*[rRuU]?(['"])(.*?)\1/.exec(args);
  let urlPath = urlArg ? urlArg[2] : `/${path.posix.basename(folder.replace(/\\/g, '/').replace(/\/+$/, ''))}`;
  if (!urlPath.startsWith('/')) urlPath = `/${urlPath}`;
  if (!urlPath.endsWith('/')) urlPath += '/';
  return { folder, urlPath, declared: Boolean(folderArg) };
}

/** `app = Flask(__name__)`, `def create_app():`… → the variable or factory, as a target suffix. */
export function matchAppObject(line: string): { callable: string; framework: string } | undefined {
  const object = APP_OBJECT.exec(line);
  if (object) return { callable: object[1], framework: object[2] };
  const factory = FACTORY.exec(line);
  if (factory) return { callable: `${factory[1]}()`, framework: 'factory' };
  return undefined;
}

/** The dotted module of a file in a folder: pkg/app.py → pkg.app, pkg/__init__.py → pkg. */
export function moduleOf(folderPath: string, filePath: string): string | undefined {
  const relative = path.relative(folderPath, filePath);
  if (relative.startsWith('..') || path.isAbsolute(relative) || !relative.endsWith('.py')) return undefined;
  const parts = relative.slice(0, -3).split(path.sep);
  if (parts[parts.length - 1] === '__init__') parts.pop();
  return parts.length ? parts.join('.') : undefined;
}

/** The pool a route from this module goes to: the one running this module, else the only/first Python pool. */
export function poolForModule(configText: string, module: string | undefined): string | undefined {
  const config = jsonc.parse(configText, [], { allowTrailingComma: true }) as { pools?: Record<string, { app?: unknown }> } | undefined;
  const pools = Object.entries(config?.pools ?? {}).filter(([, p]) => p && typeof p.app === 'string');
  const own = module && pools.find(([, p]) => String(p.app).split(':')[0] === module);
  return (own || pools[0])?.[0];
}

export class PythonActions implements vscode.CodeActionProvider {
  static readonly kind = vscode.CodeActionKind.Refactor.append('servestack');
  static readonly kinds = [PythonActions.kind];

  async provideCodeActions(document: vscode.TextDocument, range: vscode.Range | vscode.Selection): Promise<vscode.CodeAction[]> {
    const folder = vscode.workspace.getWorkspaceFolder(document.uri);
    if (!folder || folder.uri.scheme !== 'file') return [];
    const lines: string[] = [];
    for (let i = range.start.line; i <= Math.min(range.end.line, range.start.line + 20); i++) lines.push(document.lineAt(i).text);

    const routes = lines.map(matchRouteDecorator).filter((r): r is RouteDecorator => Boolean(r));
    const statics = lines.map(matchFlaskStatic).filter((s): s is NonNullable<ReturnType<typeof matchFlaskStatic>> => Boolean(s));
    const apps = lines.map(matchAppObject).filter((a): a is NonNullable<ReturnType<typeof matchAppObject>> => Boolean(a));
    if (!routes.length && !statics.length && !apps.length) return [];

    const uri = configUri(folder);
    const configText = await readText(uri);
    const module = moduleOf(folder.uri.fsPath, document.uri.fsPath);
    const actions: vscode.CodeAction[] = [];

    if (configText === undefined) {
      // Every one of these needs a config first: offer to create it, for this app.
      const app = apps[0];
      if (module && (app || routes.length || statics.length)) {
        const callable = app?.callable ?? guessAppVariable(document);
        if (callable) actions.push(await this.createConfigAction(folder, `${module}:${callable}`));
      }
      return actions;
    }

    const existing = routesInText(configText);
    for (const route of routes) {
      const prefix = routePrefix(route.path);
      if (existing.some((r) => r.path === prefix)) continue;
      const pool = poolForModule(configText, module);
      if (!pool) continue;
      const action = new vscode.CodeAction(`Add a ServeStack route for '${prefix}'`, PythonActions.kind);
      action.edit = modifyEdit(uri, configText, ['routes', -1], { path: prefix, pool }, { isArrayInsertion: true });
      actions.push(action);
    }
    for (const found of statics) {
      const absolute = path.resolve(path.dirname(document.uri.fsPath), found.folder);
      const relative = path.relative(folder.uri.fsPath, absolute).split(path.sep).join('/');
      if (relative.startsWith('..')) continue;
      if (!found.declared && !(await isDirectory(vscode.Uri.file(absolute)))) continue;
      if (existing.some((r) => r.path === found.urlPath)) continue;
      const action = new vscode.CodeAction(`Serve this static folder from the proxy (${found.urlPath} → ${relative})`, PythonActions.kind);
      action.edit = modifyEdit(uri, configText, ['routes', 0], { path: found.urlPath, static: relative }, { isArrayInsertion: true });
      actions.push(action);
    }
    return actions;
  }

  private async createConfigAction(folder: vscode.WorkspaceFolder, target: string): Promise<vscode.CodeAction> {
    const action = new vscode.CodeAction(`Create servestack.json for this app (${target})`, PythonActions.kind);
    let text = starterConfigText(folder.uri.fsPath);
    const pools = (jsonc.parse(text) as { pools?: Record<string, { app?: string }> } | undefined)?.pools ?? {};
    const poolName = Object.keys(pools).find((name) => typeof pools[name]?.app === 'string');
    text = poolName
      ? applyModify(text, ['pools', poolName, 'app'], target)
      : applyModify(applyModify(text, ['pools', 'web'], { app: target, workers: 2 }), ['routes'], [{ path: '/', pool: 'web' }]);
    const edit = new vscode.WorkspaceEdit();
    // Create, then insert: an edit with file contents does not survive every round trip
    // (executeCodeActionProvider cannot revive it), a text insert does.
    edit.createFile(configUri(folder), { ignoreIfExists: true });
    edit.insert(configUri(folder), new vscode.Position(0, 0), text);
    action.edit = edit;
    action.command = { command: 'vscode.open', title: 'Open servestack.json', arguments: [configUri(folder)] };
    return action;
  }
}

/** In a file with routes but the cursor not on the app line: the first app object in the file. */
function guessAppVariable(document: vscode.TextDocument): string | undefined {
  for (let i = 0; i < Math.min(document.lineCount, 400); i++) {
    const app = matchAppObject(document.lineAt(i).text);
    if (app) return app.callable;
  }
  return undefined;
}

async function isDirectory(uri: vscode.Uri): Promise<boolean> {
  try {
    return (await vscode.workspace.fs.stat(uri)).type === vscode.FileType.Directory;
  } catch {
    return false; // missing: not a directory
  }
}
