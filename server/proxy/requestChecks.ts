// Strict HTTP/1.1 at the front: what a request head must be before any upstream sees it.
// Node's parser (llhttp) already refuses much (bad tokens, bare LF, obs-fold, duplicate or
// malformed Content-Length, chunked with Content-Length); it lets through what is
// well-formed bytes but wrong HTTP, and those are checked here, one named check per case,
// in the order NGINX makes them. Each check reads only what the parser gives (method,
// target, version, raw header fields) and returns a refusal or nothing, so every case is a
// line of test data. The statuses are NGINX's where it has one, else RFC 9110/9112's.
// What the parser refuses itself arrives as a clientError code; `parserErrorRefusal`
// maps those, in one table.
import { isIPv6 } from 'node:net';

export interface RequestHead {
  method: string;
  url: string; // the request target as sent
  httpVersion: string; // "1.1"
  rawHeaders: readonly string[]; // [name, value, name, value, …] as the parser gave them
}

export interface HeadLimits {
  maxHeaderCount: number;
  maxHeaderLineSize: number; // bytes of the request line or of one header field
}

export interface Refusal {
  status: number;
  reason: string; // shown on the error page: what was wrong, in the client's terms
  /** The framing cannot be trusted (or the client is not speaking HTTP/1.x): answer, then close. */
  close: boolean;
  headers?: Record<string, string>;
}

/** The methods ServeStack passes on; what a 405 lists in Allow. */
export const FORWARDED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** RFC 9110 §5.6.2 token characters, as a method or a field name must be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 3986 reg-name characters: unreserved, sub-delims and percent-encodings. */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
const SHOWN = 120; // characters of a hostile value echoed on an error page

function shown(value: string): string {
  return JSON.stringify(value.length > SHOWN ? `${value.slice(0, SHOWN)}…` : value);
}

function refuse(status: number, reason: string, close = true, headers?: Record<string, string>): Refusal {
  return headers ? { status, reason, close, headers } : { status, reason, close };
}

/** The values of every field line with this (lower-case) name, in order. */
export function fieldValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const field = rawHeaders[i];
    if (field.length === name.length && field.toLowerCase() === name) values.push(rawHeaders[i + 1]);
  }
  return values;
}

/** RFC 9110 §7.2: Host = uri-host [ ":" port ]. No userinfo, no spaces, no path; a port of digits up to 65535. */
/** The last Host found valid: a client sends the same one on every request. */
let lastValidHost = '';

export function isValidHost(value: string): boolean {
  if (value === lastValidHost) return true;
  const valid = hostIsValid(value);
  if (valid) lastValidHost = value;
  return valid;
}

function hostIsValid(value: string): boolean {
  let host = value;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) return false;
    const literal = host.slice(1, close);
    const rest = host.slice(close + 1);
    if (rest && !rest.startsWith(':')) return false;
    port = rest ? rest.slice(1) : undefined;
    if (!isIPv6(literal) && !/^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/.test(literal)) return false;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      port = host.slice(colon + 1);
      host = host.slice(0, colon);
    }
    if (!host || !REG_NAME.test(host)) return false;
  }
  // RFC 3986 allows an empty port ("host:"); digits otherwise, within 16 bits.
  return port === undefined || port === '' || (/^[0-9]{1,5}$/.test(port) && Number(port) <= 65535);
}

export interface AbsoluteTarget {
  authority: string; // replaces Host (RFC 9112 §3.2.2)
  path: string; // origin-form: path and query
}

/** `http://host:port/path?q` → its authority and origin-form path; undefined for any other form. */
export function absoluteTarget(url: string): AbsoluteTarget | undefined {
  const match = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!match) return undefined;
  const rest = match[2];
  return { authority: match[1], path: rest.startsWith('/') ? rest : `/${rest}` };
}

type Check = (req: RequestHead, limits: HeadLimits) => Refusal | undefined;

/** RFC 9110 §6.2: a server refuses a major version it does not speak with 505; HTTP/2 arrives on its own preface, never as a request line. */
const checkVersion: Check = (req) => {
  if (req.httpVersion === '1.1' || req.httpVersion === '1.0') return undefined;
  return refuse(505, `HTTP/${req.httpVersion} is not supported here: send HTTP/1.1 (or 1.0).`);
};

/** NGINX answers a request line longer than one large_client_header_buffers buffer with 414. */
const checkRequestLineLength: Check = (req, limits) => {
  const length = req.method.length + 1 + req.url.length + ' HTTP/1.1'.length;
  if (length <= limits.maxHeaderLineSize) return undefined;
  return refuse(414, `The request line is ${length} bytes; the limit is ${limits.maxHeaderLineSize} bytes (limits.maxHeaderLineSize).`);
};

/** Gunicorn's limit_request_fields; RFC 6585 §5 gives the status. */
const checkHeaderCount: Check = (req, limits) => {
  const count = req.rawHeaders.length / 2;
  if (count <= limits.maxHeaderCount) return undefined;
  return refuse(431, `The request has ${count} header fields; the limit is ${limits.maxHeaderCount} (limits.maxHeaderCount).`);
};

/** One header field longer than a large_client_header_buffers buffer: 431 (NGINX says 400 "Request Header Or Cookie Too Large"). */
const checkHeaderLineLength: Check = (req, limits) => {
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const length = req.rawHeaders[i].length + 2 + req.rawHeaders[i + 1].length;
    if (length > limits.maxHeaderLineSize) {
      return refuse(431, `The header field ${shown(req.rawHeaders[i])} is ${length} bytes; the limit is ${limits.maxHeaderLineSize} bytes (limits.maxHeaderLineSize).`);
    }
  }
  return undefined;
};

/** TRACE would echo cookies and credentials back (cross-site tracing); no route tunnels CONNECT. NGINX answers both 405. */
const checkMethod: Check = (req) => {
  if (req.method !== 'TRACE' && req.method !== 'CONNECT') return undefined;
  return refuse(405, `${req.method} is not allowed here.`, req.method === 'CONNECT', { Allow: FORWARDED_METHODS });
};

/** RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, with more than one, or with an invalid one. */
const checkHost: Check = (req) => {
  const hosts = fieldValues(req.rawHeaders, 'host');
  if (hosts.length > 1) return refuse(400, `The request has ${hosts.length} Host header fields; send exactly one.`);
  if (hosts.length === 0) return req.httpVersion === '1.1' ? refuse(400, 'An HTTP/1.1 request must have a Host header field.') : undefined;
  if (!isValidHost(hosts[0])) return refuse(400, `The Host header field ${shown(hosts[0])} is not a host name or address with an optional port.`);
  return undefined;
};

/** Origin-form (`/path`) or absolute-form (`http://host/path`, RFC 9112 §3.2.2); asterisk- and authority-form are not served. */
const checkTarget: Check = (req) => {
  if (req.url.startsWith('/') || req.method === 'CONNECT') return undefined; // CONNECT's authority-form: checkMethod refuses it
  const absolute = absoluteTarget(req.url);
  if (!absolute) return refuse(400, `The request target ${shown(req.url)} must be a path starting with "/" or an absolute http:// URL.`);
  if (!isValidHost(absolute.authority)) return refuse(400, `The authority ${shown(absolute.authority)} of the request target is not a host name or address with an optional port.`);
  return undefined;
};

/** RFC 9112 §6.3: one Content-Length of digits, never beside Transfer-Encoding (the request-smuggling pair). */
const checkContentLength: Check = (req) => {
  const lengths = fieldValues(req.rawHeaders, 'content-length');
  if (lengths.length === 0) return undefined;
  if (lengths.length > 1) return refuse(400, `The request has ${lengths.length} Content-Length header fields; send one.`);
  if (!/^[0-9]+$/.test(lengths[0])) return refuse(400, `Content-Length ${shown(lengths[0])} is not a number of bytes.`);
  if (fieldValues(req.rawHeaders, 'transfer-encoding').length > 0) return refuse(400, 'The request has both Content-Length and Transfer-Encoding; send one of them.');
  return undefined;
};

/**
 * RFC 9112 §6.1 and §6.3: Transfer-Encoding is HTTP/1.1 only (400 on 1.0); chunked must be
 * the final coding, once (else the length cannot be known: 400); ServeStack decodes no
 * other coding (501, NGINX's answer for any coding but chunked). Two field lines are
 * refused as NGINX does: intermediaries disagree on which one counts.
 */
const checkTransferEncoding: Check = (req) => {
  const fields = fieldValues(req.rawHeaders, 'transfer-encoding');
  if (fields.length === 0) return undefined;
  if (req.httpVersion !== '1.1') return refuse(400, `Transfer-Encoding is not allowed in an HTTP/${req.httpVersion} request; send Content-Length.`);
  if (fields.length > 1) return refuse(400, `The request has ${fields.length} Transfer-Encoding header fields; send one.`);
  const codings = fields[0].split(',').map((c) => c.trim().toLowerCase()).filter(Boolean);
  const chunked = codings.filter((c) => c === 'chunked').length;
  if (codings[codings.length - 1] !== 'chunked' || chunked > 1) {
    return refuse(400, `Transfer-Encoding ${shown(fields[0])} does not end with a single "chunked", so the body's length cannot be known.`);
  }
  const other = codings.find((c) => c !== 'chunked');
  if (other) return refuse(501, `The transfer coding ${shown(other)} is not supported; send the body with "Transfer-Encoding: chunked" alone, or with Content-Length.`);
  return undefined;
};

/** In NGINX's order: request line, header block, then the meaning of the fields. */
const CHECKS: readonly Check[] = [
  checkVersion,
  checkRequestLineLength,
  checkHeaderCount,
  checkHeaderLineLength,
  checkTarget,
  checkHost,
  checkContentLength,
  checkTransferEncoding,
  checkMethod,
];

/** The first refusal for this request head, or undefined when it may go on. */
export function checkRequest(req: RequestHead, limits: HeadLimits): Refusal | undefined {
  for (const check of CHECKS) {
    const refusal = check(req, limits);
    if (refusal) return refusal;
  }
  return undefined;
}

/**
 * An HTTP/0.9 simple request (`GET /path` and a line end, no version). The parser would
 * wait for header fields that never come, leaving the client without an answer; the first
 * bytes of a connection are looked at for this.
 */
export function isSimpleRequest(firstBytes: string): boolean {
  const match = /^(?:\r?\n)*([^\r\n]*)\r?\n/.exec(firstBytes);
  if (!match) return false;
  const parts = match[1].split(' ');
  return parts.length === 2 && TOKEN.test(parts[0]) && parts[1].length > 0;
}

/** The request line as the parser saw it, from the bytes it failed on (for the status and the access log). */
export function requestLineOf(rawPacket: Buffer | undefined): string | undefined {
  if (!rawPacket?.length) return undefined;
  const text = rawPacket.toString('latin1', 0, Math.min(rawPacket.length, 16384));
  const start = text.search(/[^\r\n]/);
  if (start < 0) return undefined;
  const end = text.indexOf('\n', start);
  return (end < 0 ? text.slice(start) : text.slice(start, end)).replace(/\r$/, '');
}

/**
 * The answer for a request the parser refused, by its error code: one table. The status of
 * two codes depends on the request line, read from the bytes the parser failed on (its
 * current chunk, which holds the line's start when the head came in one piece): a head that
 * overflowed while its request line was over maxHeaderLineSize, or unfinished, is 414, any
 * other overflow 431; a version error is 505 for a well-formed version other than 1.x, 400
 * for a malformed line.
 */
export function parserErrorRefusal(code: string | undefined, rawPacket: Buffer | undefined, limits: { maxHeaderSize: number; maxHeaderLineSize: number }): Refusal {
  const line = requestLineOf(rawPacket);
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': {
      const startsRequest = line !== undefined && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ ]/.test(line);
      const lineEnded = rawPacket ? rawPacket.includes(0x0a) : false;
      if (startsRequest && (!lineEnded || line.length > limits.maxHeaderLineSize)) {
        return refuse(414, `The request line is longer than ${limits.maxHeaderLineSize} bytes (limits.maxHeaderLineSize).`);
      }
      return refuse(431, `The request head is larger than ${limits.maxHeaderSize} bytes (limits.maxHeaderSize).`);
    }
    case 'HPE_INVALID_VERSION': {
      const version = line ? /^\S+ \S+ HTTP\/([0-9])\.([0-9])$/.exec(line) : null;
      if (version && !(version[1] === '1' && (version[2] === '0' || version[2] === '1'))) return refuse(505, `HTTP/${version[1]}.${version[2]} is not supported here: send HTTP/1.1 (or 1.0).`);
      return refuse(400, 'The request line does not end with a valid HTTP version and a CRLF.');
    }
    case 'HPE_PAUSED_H2_UPGRADE':
      return refuse(505, 'HTTP/2 with prior knowledge is not supported here: send HTTP/1.1.');
    case 'HPE_INVALID_METHOD': {
      const method = line?.split(' ')[0] ?? '';
      if (TOKEN.test(method)) return refuse(501, `The method ${shown(method)} is not implemented.`);
      return refuse(400, 'The request does not start with an HTTP method.');
    }
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return refuse(400, 'The Transfer-Encoding is not valid: it must end with a single "chunked", and never come with Content-Length.');
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return refuse(400, 'The Content-Length is not one number of bytes, is repeated, or comes with Transfer-Encoding.');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return refuse(413, 'The chunk extensions of the body are too large.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return refuse(408, 'The request head did not arrive in time (limits.headerTimeout).');
    default:
      return refuse(400, 'The request is not valid HTTP/1.1.');
  }
}
