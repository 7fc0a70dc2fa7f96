// The dashboard page over HTTP on the control port (loopback). The token buys a session:
// `GET /dashboard/?token=T` checks T, sets the session cookie and redirects to
// /dashboard/ (the token leaves the address bar and never reaches a log); every page
// file and the page's socket then need that cookie. Without it: 401.
//
// The page's files are media/dashboard (index.html, the bundle esbuild.mjs builds, CSS).
// The same files run in the editor's webview (extension/dashboardPanel.ts), which fills
// the same template with its own CSP and resource URIs.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { DASHBOARD_PATH, DASHBOARD_SOCKET_PATH, isAllowedHost, presentedSession, SESSION_COOKIE, tokensEqual } from './auth';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The folder of the page's files: media/dashboard beside dist/ (the bundle) or two levels up (sources run by tsx). */
export function dashboardAssetsDir(): string | undefined {
  for (const candidate of [path.join(__dirname, '..', 'media', 'dashboard'), path.join(__dirname, '..', '..', 'media', 'dashboard')]) {
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  return undefined;
}

export interface PageTemplate {
  /** Where the page's files are fetched from, ending in "/". */
  assets: string;
  nonce: string;
  csp: string;
  /** "websocket" (a browser tab) or "vscode" (the webview, which relays through the extension). */
  transport: 'websocket' | 'vscode';
}

/** index.html with its placeholders filled; shared with the extension's webview. */
export function renderPage(html: string, t: PageTemplate): string {
  return html
    .replaceAll('{{csp}}', t.csp)
    .replaceAll('{{nonce}}', t.nonce)
    .replaceAll('{{assets}}', t.assets)
    .replaceAll('{{transport}}', t.transport);
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export interface DashboardPage {
  /** The session value the page's socket must present (auth.ts checks it). */
  readonly session: string;
  /** Handles the request when it is the dashboard's (true), else leaves it alone. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createDashboardPage(opts: { port: () => number; token: string; assetsDir?: string }): DashboardPage {
  const session = randomBytes(32).toString('hex');
  const assetsDir = opts.assetsDir ?? dashboardAssetsDir();

  function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Content-Length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://control.invalid');
    const pathname = url.pathname;
    if (pathname !== '/dashboard' && !pathname.startsWith(DASHBOARD_PATH)) return false;
    const port = opts.port();
    if (!isAllowedHost(req.headers.host, port)) {
      answer(res, 403, 'the Host header is not a loopback address with the control port\n');
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(res, 405, 'the dashboard answers GET only\n', { Allow: 'GET, HEAD' });
      return true;
    }
    if (pathname === DASHBOARD_SOCKET_PATH) {
      answer(res, 426, 'connect with a WebSocket\n');
      return true;
    }
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (!tokensEqual(token, opts.token)) {
        answer(res, 401, 'the dashboard token is wrong; open the dashboard with `servestack dashboard`\n', { 'WWW-Authenticate': 'Bearer realm="servestack"' });
        return true;
      }
      answer(res, 303, 'see /dashboard/\n', {
        Location: DASHBOARD_PATH,
        'Set-Cookie': `${SESSION_COOKIE}=${session}; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Strict`,
      });
      return true;
    }
    const presented = presentedSession(req.headers);
    if (presented === undefined || !tokensEqual(presented, session)) {
      answer(res, 401, 'the dashboard needs its token: run `servestack dashboard` (or `servestack dashboard --url`) in the served folder\n', {
        'WWW-Authenticate': 'Bearer realm="servestack"',
      });
      return true;
    }
    if (!assetsDir) {
      answer(res, 500, 'the dashboard page is missing from this build (media/dashboard); run `npm run build`\n');
      return true;
    }
    const name = pathname === '/dashboard' || pathname === DASHBOARD_PATH ? 'index.html' : pathname.slice(DASHBOARD_PATH.length);
    // Only the page's own files, by plain name: no folders, no dotfiles.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name) || name.includes('..')) {
      answer(res, 404, 'not found\n');
      return true;
    }
    const file = path.join(assetsDir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      answer(res, 404, 'not found\n');
      return true;
    }
    if (name === 'index.html') {
      const nonce = newNonce();
      const host = req.headers.host!;
      const csp = [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        "style-src 'self'",
        "img-src 'self' data:",
        `connect-src ws://${host}`,
        "base-uri 'none'",
        "form-action 'none'",
      ].join('; ');
      const html = renderPage(bytes.toString('utf8'), { assets: DASHBOARD_PATH, nonce, csp, transport: 'websocket' });
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        // frame-ancestors works only in the header, not in the page's <meta>.
        'Content-Security-Policy': `${csp}; frame-ancestors 'none'`,
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
        'X-Frame-Options': 'DENY',
        'Content-Length': String(Buffer.byteLength(html)),
      });
      res.end(req.method === 'HEAD' ? undefined : html);
      return true;
    }
    const type = TYPES[path.extname(name)];
    if (!type) {
      answer(res, 404, 'not found\n');
      return true;
    }
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Length': String(bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
    return true;
  }

  return { session, handle };
}
