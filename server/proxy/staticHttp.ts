// The HTTP cases of static serving, one named check each (as `send` does), pure over
// request headers and a file's validators: preconditions (RFC 9110 §13.2.2 order), Range
// and If-Range (§14), and the tiny error page. Accept-Encoding is negotiated in compress.ts.
import type * as http from 'node:http';
import { STATUS_CODES } from 'node:http';

/** What the conditional checks need to know about the representation being served. */
export interface Validators {
  etag: string; // strong, quoted
  lastModified: string; // HTTP date
  mtimeSec: number; // whole seconds, the precision of HTTP dates
  size: number;
}

export type Precondition = 'ok' | 304 | 412;

/** If-Match → If-Unmodified-Since → If-None-Match → If-Modified-Since, as RFC 9110 orders them. */
export function checkPreconditions(headers: http.IncomingHttpHeaders, v: Validators): Precondition {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, v.etag, true)) return 412;
  } else {
    const ius = headers['if-unmodified-since'];
    if (ius !== undefined) {
      const t = Date.parse(ius);
      if (!Number.isNaN(t) && v.mtimeSec * 1000 > t) return 412;
    }
  }
  const inm = headers['if-none-match'];
  if (inm !== undefined) return etagListMatches(inm, v.etag, false) ? 304 : 'ok';
  const ims = headers['if-modified-since'];
  if (ims !== undefined) {
    // Fast path: browsers echo Last-Modified verbatim.
    if (ims === v.lastModified) return 304;
    const t = Date.parse(ims);
    if (!Number.isNaN(t) && v.mtimeSec * 1000 <= t) return 304;
  }
  return 'ok';
}

/** "*" or a comma list of entity tags; weak comparison ignores "W/", strong refuses weak tags. */
function etagListMatches(header: string, etag: string, strong: boolean): boolean {
  if (header === etag) return true;
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  for (const raw of trimmed.split(',')) {
    let tag = raw.trim();
    if (tag.startsWith('W/')) {
      if (strong) continue;
      tag = tag.slice(2);
    }
    if (tag === etag) return true;
  }
  return false;
}

export type RangeResult = { kind: 'full' } | { kind: 'unsatisfiable' } | { kind: 'partial'; start: number; end: number };

const FULL: RangeResult = { kind: 'full' };
const UNSATISFIABLE: RangeResult = { kind: 'unsatisfiable' };
const DIGITS = /^\d+$/;

/**
 * One byte range → partial; several ranges → full (RFC 9110 allows answering 200, and a
 * multipart/byteranges body is more code than any browser needs); a syntax error, another
 * unit, or an If-Range that no longer matches → full; a range past the end → 416.
 */
export function evaluateRange(headers: http.IncomingHttpHeaders, v: Validators): RangeResult {
  const header = headers.range;
  if (header === undefined) return FULL;
  const ifRange = headers['if-range'];
  if (ifRange !== undefined && !ifRangeMatches(Array.isArray(ifRange) ? ifRange[0] : ifRange, v)) return FULL;
  const eq = header.indexOf('=');
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL;
  const specs = header.slice(eq + 1).split(',');
  if (specs.length !== 1) return FULL;
  const spec = specs[0].trim();
  const dash = spec.indexOf('-');
  if (dash === -1) return FULL;
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  if (first === '') {
    // Suffix range "-N": the last N bytes.
    if (!DIGITS.test(last)) return FULL;
    const n = Number(last);
    if (n === 0 || v.size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, v.size - n), end: v.size - 1 };
  }
  if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return FULL;
  const start = Number(first);
  if (last !== '' && Number(last) < start) return FULL; // invalid: ignore the header
  if (start >= v.size) return UNSATISFIABLE;
  const end = last === '' ? v.size - 1 : Math.min(Number(last), v.size - 1);
  return { kind: 'partial', start, end };
}

/** If-Range needs a strong validator: our (strong) ETag exactly, or exactly our Last-Modified date. */
function ifRangeMatches(ifRange: string, v: Validators): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === v.etag;
  const t = Date.parse(value);
  return !Number.isNaN(t) && t === v.mtimeSec * 1000;
}

// ── Responses ──────────────────────────────────────────────────────────────────────

const errorBodies = new Map<number, Buffer>();

/** A tiny plain-text page: "404 Not Found". HEAD gets the headers only. */
export function sendStatus(req: http.IncomingMessage, res: http.ServerResponse, status: number, extra: string[] = []): void {
  if (res.headersSent || res.destroyed) return;
  let body = errorBodies.get(status);
  if (!body) {
    body = Buffer.from(`${status} ${STATUS_CODES[status] ?? ''}\n`);
    errorBodies.set(status, body);
  }
  res.writeHead(status, [
    'Content-Type', 'text/plain; charset=utf-8',
    'Content-Length', String(body.length),
    'Cache-Control', 'no-store',
    'X-Content-Type-Options', 'nosniff',
    ...extra,
  ]);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}
