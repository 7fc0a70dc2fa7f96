// Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1) and every header
// named in Connection stay on their hop, both ways. Forwarding headers that arrive from
// the client are dropped and set afresh: ServeStack is the edge, so nothing a client
// claims about where it came from is passed on (a spoofed X-Forwarded-For would reach
// the app as the truth — the app's proxy-fix middleware trusts loopback). Two more never
// cross, to any upstream: `Proxy`, which CGI-style apps see as HTTP_PROXY and many HTTP
// clients take as their outgoing proxy (httpoxy, CVE-2016-5385); and any name with an
// underscore, which WSGI folds onto the dashed name (`X_Forwarded_For` would reach the app
// as HTTP_X_FORWARDED_FOR) — NGINX drops those too (underscores_in_headers off).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FrontClaims } from './trustedFront';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded', 'x-forwarded-prefix']);
const NEVER_FORWARDED = new Set(['proxy']);

/**
 * Header names as clients and apps spell them → what the proxy does with them, worked out
 * once per spelling: names repeat on every request, and lower-casing each one (three Set
 * lookups after it) was an allocation per header per request. Bounded: a client that
 * invents names cannot grow it past NAME_MEMO_SIZE; the rest are worked out each time.
 */
const NAME_MEMO_SIZE = 512;
/** A request header's name → its lower-case name to forward, or null: never forwarded (hop-by-hop, forwarding, `Proxy`, an underscore). */
const requestNames = new Map<string, string | null>();
/** A response header's name → its lower-case name when it is hop-by-hop or Connection, else null. */
const responseNames = new Map<string, string | null>();

/** `judge`'s answer for a name (given lower-cased), remembered under the name as spelled. */
function judgedName(memo: Map<string, string | null>, raw: string, judge: (lower: string) => string | null): string | null {
  let name = memo.get(raw);
  if (name === undefined) {
    name = judge(raw.toLowerCase());
    if (memo.size < NAME_MEMO_SIZE) memo.set(raw, name);
  }
  return name;
}

const forwardedAs = (lower: string): string | null => (HOP_BY_HOP.has(lower) || FORWARDING.has(lower) || NEVER_FORWARDED.has(lower) || lower.includes('_') ? null : lower);
const hopByHop = (lower: string): string | null => (HOP_BY_HOP.has(lower) ? lower : null);

function requestName(raw: string): string | null {
  return judgedName(requestNames, raw, forwardedAs);
}

function responseHopName(raw: string): string | null {
  return judgedName(responseNames, raw, hopByHop);
}

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const tokens = value.toLowerCase().split(',').map((t) => t.trim()).filter((t) => t && t !== 'close' && t !== 'keep-alive');
  return tokens.length ? new Set(tokens) : undefined;
}

export interface ForwardingFacts {
  remoteAddr: string;
  scheme: 'http' | 'https';
  host: string | undefined;
  port: number;
  /** Where the app is mounted (trustedFront.ts); sent on as X-Forwarded-Prefix. */
  scriptName?: string;
  /** What a trusted front said about the original request; its X-Forwarded-For is kept. */
  claims?: FrontClaims;
}

/** Request headers for the upstream, lower-case names, forwarding headers set as NGINX would. */
export function upstreamRequestHeaders(req: IncomingMessage, facts: ForwardingFacts): [string, string][] {
  const raw = req.rawHeaders;
  const listed = connectionTokens(req.headers.connection);
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = requestName(raw[i]);
    if (name === null || listed?.has(name)) continue;
    out.push([name, raw[i + 1]]);
  }
  const claims = facts.claims;
  out.push(['x-forwarded-for', claims?.for ? `${claims.for}, ${facts.remoteAddr}` : facts.remoteAddr]);
  out.push(['x-forwarded-proto', claims?.proto ?? facts.scheme]);
  const host = claims?.host ?? facts.host;
  if (host) out.push(['x-forwarded-host', host]);
  out.push(['x-forwarded-port', claims?.port ?? String(facts.port)]);
  out.push(['x-real-ip', facts.remoteAddr]);
  if (facts.scriptName) out.push(['x-forwarded-prefix', facts.scriptName]);
  return out;
}

/** Response headers for the client, hop-by-hop removed: the list itself when it has none (the common case). */
export function downstreamResponseHeaders(headers: [string, string][]): [string, string][] {
  let listed: Set<string> | undefined;
  let drop = false;
  for (let i = 0; i < headers.length; i++) {
    const hop = responseHopName(headers[i][0]);
    if (hop === null) continue;
    drop = true; // Connection is hop-by-hop itself
    if (hop === 'connection') listed = connectionTokens(headers[i][1]);
  }
  if (!drop) return headers;
  return headers.filter(([name]) => responseHopName(name) === null && !listed?.has(name.toLowerCase()));
}

/** The client's address without the IPv4-mapped prefix, as NGINX's $remote_addr shows it. */
export function clientAddress(req: IncomingMessage): string {
  return socketAddress(req.socket);
}

export function socketAddress(socket: Socket): string {
  const addr = socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
