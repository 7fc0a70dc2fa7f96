// Who may open the control channel: the checks made on the HTTP upgrade request, before
// any WebSocket exists. Pure functions, so each refusal is tested on its own.
//
//  - Host must be a loopback name or address with the control server's port: a page on a
//    rebinding domain (evil.example → 127.0.0.1) sends `Host: evil.example:PORT`.
//  - Origin, when present (browsers always send it), must be the control server's own:
//    any other page is cross-site WebSocket hijacking.
//  - The token, from `Authorization: Bearer <token>` or (browsers cannot set headers) the
//    subprotocol `servestack.token.<token>`; never a query string, which lands in logs.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { CONTROL_PATH, CONTROL_TOKEN_PROTOCOL_PREFIX } from '../protocol';

/** The dashboard page, served by the control server. */
export const DASHBOARD_PATH = '/dashboard/';
/** The page's own WebSocket endpoint: the same channel, authenticated by the page's session cookie. */
export const DASHBOARD_SOCKET_PATH = '/dashboard/control';
/**
 * The cookie a browser gets for the token (`/dashboard/?token=…`, then redirected): a
 * separate random value, HttpOnly, SameSite=Strict, and scoped to /dashboard/ so the
 * app's own pages on other loopback ports do not receive it.
 */
export const SESSION_COOKIE = 'servestack_dashboard';

export interface Refusal {
  status: 400 | 401 | 403 | 404;
  /** Said to the client and the server's log; never contains the token. */
  reason: string;
}

/** 32 random bytes, hex: valid in a header and as a subprotocol token. */
export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

/** Constant-time comparison (hashing first hides the length too). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

const LOOPBACK_NAMES = new Set(['localhost', '[::1]']);

function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (LOOPBACK_NAMES.has(h)) return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

/** `Host` is `<loopback>:<port>` exactly. */
export function isAllowedHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(host);
  return m !== null && isLoopbackHostname(m[1]) && Number(m[2]) === port;
}

/** The origins of pages served by the control server itself (http, loopback, its port). */
export function ownOrigins(port: number): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
}

/** No Origin (not a browser) or one of the allowed ones. "null" (sandboxed or file pages) is refused. */
export function isAllowedOrigin(origin: string | undefined, port: number, extra: readonly string[] = []): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  return ownOrigins(port).includes(o) || extra.some((e) => e.toLowerCase() === o);
}

/** The subprotocols a client offered, in order. */
export function offeredProtocols(headers: IncomingHttpHeaders): string[] {
  const raw = headers['sec-websocket-protocol'];
  if (!raw) return [];
  return raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** The token a client presented, if any. */
export function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  for (const p of offeredProtocols(headers)) {
    if (p.startsWith(CONTROL_TOKEN_PROTOCOL_PREFIX)) return p.slice(CONTROL_TOKEN_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

/** The dashboard session a browser presented in its Cookie header, if any. */
export function presentedSession(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers.cookie;
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface UpgradeCheck {
  port: number;
  token: string;
  allowedOrigins?: readonly string[];
  /** The dashboard's session value (the cookie a page got for the token); without it the page's endpoint is refused. */
  session?: string;
}

/** Why an upgrade request is refused, or undefined when it may proceed. */
export function checkUpgrade(url: string | undefined, headers: IncomingHttpHeaders, opts: UpgradeCheck): Refusal | undefined {
  const pathname = (url ?? '').split('?')[0];
  if (pathname === DASHBOARD_SOCKET_PATH) return checkPageUpgrade(headers, opts);
  if (pathname !== CONTROL_PATH) return { status: 404, reason: `no WebSocket endpoint at ${pathname}; use ${CONTROL_PATH}` };
  if (!isAllowedHost(headers.host, opts.port)) {
    return { status: 403, reason: 'the Host header is not a loopback address with the control port' };
  }
  if (!isAllowedOrigin(headers.origin, opts.port, opts.allowedOrigins)) {
    return { status: 403, reason: 'pages of another origin may not open the control channel' };
  }
  const token = presentedToken(headers);
  if (token === undefined) return { status: 401, reason: 'a control token is required' };
  if (!tokensEqual(token, opts.token)) return { status: 401, reason: 'the control token is wrong' };
  return undefined;
}

/** The dashboard page's socket: its own origin only (a cookie rides along on any request), and the session cookie. */
function checkPageUpgrade(headers: IncomingHttpHeaders, opts: UpgradeCheck): Refusal | undefined {
  if (!isAllowedHost(headers.host, opts.port)) {
    return { status: 403, reason: 'the Host header is not a loopback address with the control port' };
  }
  if (headers.origin === undefined || !ownOrigins(opts.port).includes(headers.origin.toLowerCase())) {
    return { status: 403, reason: 'only the dashboard page served here may use its endpoint' };
  }
  const session = presentedSession(headers);
  if (session === undefined || opts.session === undefined) return { status: 401, reason: 'open the dashboard with its token first (`servestack dashboard`)' };
  if (!tokensEqual(session, opts.session)) return { status: 401, reason: 'the dashboard session is not this server\'s; open the dashboard again' };
  return undefined;
}
