// Where a served page is reachable from the user's browser, as pure logic (no vscode):
// code-server's asExternalUri answers `…/proxy/PORT/`, a route that strips its prefix, so
// the app's absolute links (`/static/style.css`) miss it. Its sibling `…/absproxy/PORT/`
// passes the whole path through; the server, started with `--path-prefix
// /absproxy/{port}`, takes the prefix off and tells the app (SCRIPT_NAME / root_path), so
// url_for builds links that stay under it.

/** The server flag that makes `/absproxy/PORT/` work (see trustedFront.ts). */
export const CODE_SERVER_PATH_PREFIX = '/absproxy/{port}';

/** `https://host/base/proxy/8000/` → `https://host/base/absproxy/8000/`; undefined for any other form. */
export function absproxyUrl(external: string, port: number): string | undefined {
  let url: URL;
  try {
    url = new URL(external);
  } catch {
    return undefined;
  }
  const m = new RegExp(`^(.*)/proxy/${port}/?$`).exec(url.pathname);
  if (!m) return undefined;
  url.pathname = `${m[1]}/absproxy/${port}/`;
  return url.toString();
}

/** `base` (ending in "/") joined with an absolute path and query of the app. */
export function joinPath(base: string, pathname: string): string {
  const url = new URL(base);
  const rel = pathname.replace(/^\/+/, '');
  const q = rel.indexOf('?');
  url.pathname = url.pathname.replace(/\/?$/, '/') + (q < 0 ? rel : rel.slice(0, q));
  url.search = q < 0 ? '' : rel.slice(q);
  return url.toString();
}

/** Whether this extension host runs inside code-server (its server sets these for its children). */
export function looksLikeCodeServer(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.CODE_SERVER_PARENT_PID || env.CODE_SERVER_SESSION_SOCKET || /\/proxy\/\{\{port\}\}/.test(env.VSCODE_PROXY_URI ?? ''));
}
