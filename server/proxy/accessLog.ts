// One line per request in NGINX's "combined" format, plus what NGINX users add for an
// upstream: request time, upstream time and which worker answered.
import type { IncomingMessage, ServerResponse } from 'node:http';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let cachedSecond = -1;
let cachedStamp = '';

/** NGINX's $time_local, e.g. 25/Nov/2026:16:01:26 +0000, computed once a second. */
export function timeLocal(now: number): string {
  const second = Math.floor(now / 1000);
  if (second === cachedSecond) return cachedStamp;
  const d = new Date(now);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  const pad = (n: number) => String(n).padStart(2, '0');
  cachedStamp = `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
  cachedSecond = second;
  return cachedStamp;
}

const NEEDS_ESCAPE = /[\\"\x00-\x1f\u007f-\uffff]/;

/**
 * A value as it goes between the line's quotes, escaped as NGINX escapes its log: `\` and
 * `"` get a backslash; control bytes and every byte from 0x7F up become \xHH. Node gives
 * header bytes as Latin-1 characters, one a byte; a character beyond (none should come)
 * is escaped as its UTF-8 bytes.
 */
function escaped(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/[\\"]/g, (c) => '\\' + c).replace(/[\x00-\x1f\u{7f}-\u{10ffff}]/gu, (c) => {
    const code = c.charCodeAt(0);
    if (code <= 0xff) return hexByte(code);
    let out = '';
    for (const byte of Buffer.from(c, 'utf8')) out += hexByte(byte);
    return out;
  });
}

function hexByte(byte: number): string {
  return '\\x' + byte.toString(16).toUpperCase().padStart(2, '0');
}

/** What a line shows of the request: an IncomingMessage, or what could be read of a head the parser refused. */
export interface AccessRequest {
  method?: string;
  url?: string;
  httpVersion: string;
  headers: { referer?: string; 'user-agent'?: string };
}

export interface AccessFacts {
  remoteAddr: string;
  status: number;
  bytes: number;
  startedAt: number; // ms (performance.now())
  endedAt: number;
  upstreamMs?: number;
  worker?: string; // "pool:id"
  /** The request line as received, when the parser could not split it (NGINX logs $request so). */
  requestLine?: string;
  /** Epoch ms for the line's time (wallClock.ts, from endedAt); default now. */
  wallTime?: number;
}

/**
 * One `+` chain, no array and no template: V8 builds a rope of it, which the console's
 * write flattens once, when it copies the line into its bytes (consoleBytes.ts). Measured
 * in a loop with that write (bench/RESULTS.md, 2026-12-02 14:40): 146 ns a line, against
 * 332 for an array joined (the build before) and 236 for a template literal.
 */
export function accessLine(req: AccessRequest, facts: AccessFacts): string {
  const request = facts.requestLine !== undefined ? escaped(facts.requestLine) : escaped(String(req.method)) + ' ' + escaped(String(req.url)) + ' HTTP/' + req.httpVersion;
  const referer = req.headers.referer;
  const agent = req.headers['user-agent'];
  return (
    facts.remoteAddr +
    ' - - [' +
    timeLocal(facts.wallTime ?? Date.now()) +
    '] "' +
    request +
    '" ' +
    facts.status +
    ' ' +
    facts.bytes +
    ' "' +
    (referer ? escaped(referer) : '-') +
    '" "' +
    (agent ? escaped(agent) : '-') +
    '" rt=' +
    seconds(facts.endedAt - facts.startedAt) +
    ' urt=' +
    (facts.upstreamMs === undefined ? '-' : seconds(facts.upstreamMs)) +
    ' w=' +
    (facts.worker ?? '-')
  );
}

/** Milliseconds as seconds with three decimals, as NGINX's $request_time ("0.004"); toFixed cost 100 ns a call. */
export function seconds(ms: number): string {
  if (!(ms >= 0)) return (ms / 1000).toFixed(3); // negative or NaN: as toFixed says it
  const whole = Math.round(ms);
  const s = Math.floor(whole / 1000);
  const rest = whole - s * 1000;
  return s + (rest < 10 ? '.00' : rest < 100 ? '.0' : '.') + rest;
}

/**
 * The body length for the log when the handler itself answered (static files, error
 * pages). They pass their headers to writeHead, which getHeader cannot see: the length
 * Node kept from the head it wrote is read instead, or, on a Node that keeps none (the
 * property is internal; the extension runs the server on the editor's Node), the head's
 * text. A response without a length (chunked) logs 0.
 */
export function sentBodyLength(req: IncomingMessage, res: ServerResponse): number {
  if (req.method === 'HEAD' || res.statusCode === 304) return 0;
  const header = res.getHeader('content-length');
  if (header !== undefined) return Number(header);
  const written = (res as unknown as { _contentLength?: number | null })._contentLength;
  if (typeof written === 'number') return written;
  const head = (res as unknown as { _header?: string | null })._header;
  const match = head ? /\r\ncontent-length: *(\d+)/i.exec(head) : null;
  return match ? Number(match[1]) : 0;
}
