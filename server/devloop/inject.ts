// The live-reload script joins HTML answers from the upstreams (development only; the
// caller decides that). It wraps one request's ResponseSink: the head is checked once
// (HTML, not encoded, not HEAD or a range, a status with a body, no `no-transform`), then
// the body streams through unchanged except for one <script> tag, put before the first
// `</body` or, when there is none, at the end. Exactly one tag always goes in, so a
// Content-Length can be raised by its size up front and nothing is buffered: a streamed
// page keeps streaming. Runs before any compression, on the bytes the upstream wrote.
import type { IncomingMessage } from 'node:http';
import type { ResponseSink } from '../upstream/types';

/** Where the client script and its socket live, under the base path the page is served at. */
export const RESERVED_PREFIX = '/__servestack/';
export const SCRIPT_PATH = `${RESERVED_PREFIX}livereload.js`;
export const SOCKET_PATH = `${RESERVED_PREFIX}livereload`;

const BODY_CLOSE = '</body';
/** Bytes kept back between chunks so a `</body` split across two is still found. */
const CARRY = BODY_CLOSE.length - 1;

/**
 * The tag for a page served under `basePath` ("/" today; a path prefix from a trusted
 * front later). The script finds its socket from its own URL, so the page's origin and
 * prefix carry over, whatever maps them (asExternalUri, a tunnel).
 */
export function scriptTag(basePath = '/', nonce?: string): string {
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  const nonceAttr = nonce ? ` nonce="${nonce.replace(/[^A-Za-z0-9+/=_-]/g, '')}"` : '';
  return `<script src="${base}${SCRIPT_PATH}" async${nonceAttr}></script>`;
}

function header(headers: [string, string][], name: string): string | undefined {
  for (const [k, v] of headers) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** Why an answer is left alone, or undefined when the tag may go in. */
export function skipReason(method: string, requestHeaders: IncomingMessage['headers'], status: number, headers: [string, string][]): string | undefined {
  if (method === 'HEAD') return 'HEAD';
  if (requestHeaders.range !== undefined) return 'range request';
  if (status < 200 || status === 204 || status === 206 || status === 304) return 'no body';
  const type = (header(headers, 'content-type') ?? '').toLowerCase();
  if (!type.startsWith('text/html')) return 'not HTML';
  if (/charset\s*=\s*"?utf-(16|32)/.test(type)) return 'not an ASCII-compatible charset';
  const encoding = (header(headers, 'content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') return 'encoded body';
  if (/\bno-transform\b/i.test(header(headers, 'cache-control') ?? '')) return 'no-transform';
  return undefined;
}

/** The nonce a page's CSP gives its scripts, so the tag runs under `script-src 'nonce-…'`. */
function cspNonce(headers: [string, string][]): string | undefined {
  const csp = header(headers, 'content-security-policy');
  return csp ? /'nonce-([^']+)'/.exec(csp)?.[1] : undefined;
}

/** Finds `</body` in any letter case. */
function findBodyClose(text: string): number {
  return text.toLowerCase().indexOf(BODY_CLOSE);
}

/** Wraps `sink` so an HTML answer gets the tag; other answers pass through untouched. */
export function injectingSink(req: IncomingMessage, sink: ResponseSink, basePath = '/'): ResponseSink {
  let active = false;
  let done = false;
  let tag = Buffer.alloc(0);
  let carry = Buffer.alloc(0);
  const write = (chunk: Buffer) => {
    if (!active || done) return sink.data(chunk);
    const bytes = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    // latin1 maps bytes one to one, so an index in the text is an index in the bytes.
    const at = findBodyClose(bytes.toString('latin1'));
    if (at >= 0) {
      done = true;
      carry = Buffer.alloc(0);
      sink.data(Buffer.concat([bytes.subarray(0, at), tag, bytes.subarray(at)]));
      return;
    }
    const keep = Math.min(CARRY, bytes.length);
    carry = Buffer.from(bytes.subarray(bytes.length - keep));
    if (bytes.length > keep) sink.data(bytes.subarray(0, bytes.length - keep));
  };
  return {
    assigned: (who) => sink.assigned(who),
    start: (status, headers) => {
      if (skipReason(req.method ?? 'GET', req.headers, status, headers) !== undefined) return sink.start(status, headers);
      active = true;
      tag = Buffer.from(scriptTag(basePath, cspNonce(headers)));
      const adjusted = headers.map(([k, v]): [string, string] => {
        const name = k.toLowerCase();
        if (name === 'content-length') return [k, String(Number(v) + tag.length)];
        // Other bytes than the app's: a strong validator would be a lie (NGINX's gzip does the same).
        if (name === 'etag' && !v.startsWith('W/')) return [k, `W/${v}`];
        return [k, v];
      });
      sink.start(status, adjusted);
    },
    data: write,
    end: () => {
      if (active && !done) {
        done = true;
        sink.data(Buffer.concat([carry, tag]));
      }
      sink.end();
    },
    fail: (failure) => sink.fail(failure),
  };
}
