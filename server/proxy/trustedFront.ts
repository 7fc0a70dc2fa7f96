// Where an app is mounted when something sits in front of ServeStack. Two ways in:
//  - a path prefix ServeStack was told to serve under (`--path-prefix`, e.g. code-server's
//    `/absproxy/{port}`, which passes the full path through): a request under it has the
//    prefix taken off before routing and given to the app as SCRIPT_NAME / root_path;
//  - `X-Forwarded-Prefix` (and -Proto, -Host, -Port, -For) from a peer listed in
//    "trustedProxies": the front already took the prefix off, so only SCRIPT_NAME is set.
// From any other peer those headers are dropped (headers.ts), as before. Pure: no I/O.
import { BlockList, isIP } from 'node:net';

export interface FrontTrust {
  /** Peers whose forwarding headers are believed; undefined: none (the default). */
  trusted?: BlockList;
  /** A prefix the app is also served under, without a trailing "/" ("/absproxy/8000"). */
  pathPrefix?: string;
}

/** What a trusted front said about the original request (only the fields it sent). */
export interface FrontClaims {
  for?: string;
  proto?: 'http' | 'https';
  host?: string;
  port?: string;
}

export type Mount =
  | { kind: 'mounted'; url: string; scriptName: string; claims?: FrontClaims }
  /** The bare prefix without its "/": send the browser to the prefix with one, as NGINX does for a location. */
  | { kind: 'redirect'; location: string };

/** `"127.0.0.1"`, `"::1"`, `"10.0.0.0/8"`: undefined when fine, else what to write instead. */
export function trustedProxyError(entry: string): string | undefined {
  const [address, bits, extra] = entry.split('/');
  const family = isIP(address);
  if (!family || extra !== undefined) return `"${entry}" is not an IP address or a CIDR range; write e.g. "127.0.0.1", "::1" or "10.0.0.0/8"`;
  if (bits === undefined) return undefined;
  const n = Number(bits);
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(bits) || n > max) return `"${entry}" has a prefix length out of range; use /0 to /${max}`;
  return undefined;
}

/** A BlockList of the entries (already checked with trustedProxyError); undefined for none. */
export function trustList(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

export function isTrustedPeer(list: BlockList | undefined, address: string): boolean {
  if (!list || !address) return false;
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * A prefix as a front may send it: absolute, no "." or ".." segment, no control or
 * space characters, at most 256 characters; "/" and "" mean none. undefined when unusable.
 */
export function cleanPrefix(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const prefix = value.trim().replace(/\/+$/, '');
  if (prefix === '') return '';
  if (prefix.length > 256 || !prefix.startsWith('/') || /[\s\x00-\x1f\x7f?#\\]/.test(prefix)) return undefined;
  if (prefix.split('/').some((segment) => segment === '.' || segment === '..' || /^%2e/i.test(segment))) return undefined;
  return prefix;
}

/** `--path-prefix` with `{port}` filled in from the bound port. */
export function expandPathPrefix(template: string, port: number): string {
  return template.replace(/\{port\}/g, String(port)).replace(/\/+$/, '');
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** The mount of one request: its URL as the routes see it, and what the app is told. */
export function resolveMount(url: string, peer: string, headers: Record<string, string | string[] | undefined>, trust: FrontTrust): Mount {
  let scriptName = '';
  let rest = url;
  if (trust.pathPrefix) {
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname === trust.pathPrefix) return { kind: 'redirect', location: `${trust.pathPrefix}/${q < 0 ? '' : url.slice(q)}` };
    if (pathname.startsWith(`${trust.pathPrefix}/`)) {
      scriptName = trust.pathPrefix;
      rest = url.slice(trust.pathPrefix.length);
    }
  }
  if (!isTrustedPeer(trust.trusted, peer)) return { kind: 'mounted', url: rest, scriptName };
  const claims: FrontClaims = {};
  const forwardedFor = single(headers['x-forwarded-for']);
  if (forwardedFor && forwardedFor.split(',').every((a) => isIP(a.trim()))) claims.for = forwardedFor.split(',').map((a) => a.trim()).join(', ');
  const proto = single(headers['x-forwarded-proto'])?.trim().toLowerCase();
  if (proto === 'http' || proto === 'https') claims.proto = proto;
  const host = single(headers['x-forwarded-host'])?.trim();
  if (host && /^[A-Za-z0-9.\-:[\]]{1,255}$/.test(host)) claims.host = host;
  const port = single(headers['x-forwarded-port'])?.trim();
  if (port && /^\d{1,5}$/.test(port) && Number(port) <= 65535) claims.port = port;
  const prefix = cleanPrefix(single(headers['x-forwarded-prefix']));
  return { kind: 'mounted', url: rest, scriptName: (prefix ?? '') + scriptName, claims };
}
