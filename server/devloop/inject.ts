// The live-reload script joins HTML answers from the upstreams (development only; the
// caller decides that). It wraps one request's ResponseSink: the head is checked once
// (HTML, not encoded, not HEAD or a range, a status with a body, no `no-transform`), then
// the body passes unchanged except for one <script> tag before the first `</body`: a
// document gets it, a fragment (no `</body`) does not. A streamed page keeps streaming;
// one with a declared length (up to MAX_HELD_BYTES) is held until the tag's place is
// known. Runs before any compression, on the bytes the upstream wrote.
import type { IncomingMessage } from 'node:http';
import type { ResponseSink, UpstreamFailure } from '../upstream/types';
import { headerValue as header } from '../proxy/responseStages';

/** Where the client script and its socket live, under the base path the page is served at. */
export const RESERVED_PREFIX = '/__servestack/';
export const SCRIPT_PATH = `${RESERVED_PREFIX}livereload.js`;
export const SOCKET_PATH = `${RESERVED_PREFIX}livereload`;

const BODY_CLOSE = '</body';
/** Bytes kept back between chunks so a `</body` split across two is still found. */
const CARRY = BODY_CLOSE.length - 1;

/** What an error page's script needs: its status, and the hub's count of changes (LiveReloadHub.seen) when it was made. */
export interface ErrorPageState {
  status: number;
  seen: number;
}

/**
 * The tag for a page served under `basePath` ("/" today; a path prefix from a trusted
 * front later). The script finds its socket from its own URL, so the page's origin and
 * prefix carry over, whatever maps them (asExternalUri, a tunnel).
 */
export function scriptTag(basePath = '/', nonce?: string, errorPage?: ErrorPageState): string {
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  const nonceAttr = nonce ? ` nonce="${nonce.replace(/[^A-Za-z0-9+/=_-]/g, '')}"` : '';
  // On the proxy's own error page: the page reloads once the app can answer (see livereload.js).
  const errorAttr = errorPage === undefined ? '' : ` data-servestack-error="${Math.trunc(errorPage.status)}" data-servestack-seen="${Math.trunc(errorPage.seen)}"`;
  return `<script src="${base}${SCRIPT_PATH}" async${nonceAttr}${errorAttr}></script>`;
}

/**
 * A whole HTML document with the tag before its first `</body` (any letter case), or
 * undefined for a fragment (no `</body`): for bodies the proxy holds whole (a static
 * file in memory, its own error pages).
 */
export function withScriptTag(html: Buffer, tag: string): Buffer | undefined {
  const at = findBodyClose(html);
  if (at < 0) return undefined;
  return Buffer.concat([html.subarray(0, at), Buffer.from(tag), html.subarray(at)]);
}

/** A browser asking for a page (its navigations and frames send text/html), not a script or an API client. */
export function acceptsHtml(accept: string | undefined): boolean {
  return accept !== undefined && /text\/html/i.test(accept);
}

/** Why an answer is left alone, or undefined when the tag may go in. */
export function skipReason(method: string, requestHeaders: IncomingMessage['headers'], status: number, headers: [string, string][]): string | undefined {
  if (method === 'HEAD') return 'HEAD';
  if (requestHeaders.range !== undefined) return 'range request';
  if (status < 200 || status === 204 || status === 206 || status === 304) return 'no body';
  const type = (header(headers, 'content-type') ?? '').toLowerCase();
  if (!type.startsWith('text/html')) return 'not HTML';
  if (type.includes('utf-') && /charset\s*=\s*"?utf-(16|32)/.test(type)) return 'not an ASCII-compatible charset';
  const encoding = (header(headers, 'content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') return 'encoded body';
  const cacheControl = header(headers, 'cache-control');
  if (cacheControl !== undefined && /\bno-transform\b/i.test(cacheControl)) return 'no-transform';
  return undefined;
}

/** The nonce a page's CSP gives its scripts, so the tag runs under `script-src 'nonce-…'`. */
function cspNonce(headers: [string, string][]): string | undefined {
  const csp = header(headers, 'content-security-policy');
  return csp ? /'nonce-([^']+)'/.exec(csp)?.[1] : undefined;
}

/** Where `</body` (any letter case) starts in the bytes, or -1: no copy of the body as text to look. */
function findBodyClose(bytes: Buffer): number {
  for (let at = indexOfLtSlash(bytes, 0); at >= 0; at = indexOfLtSlash(bytes, at + 1)) {
    if (at + BODY_CLOSE.length > bytes.length) return -1;
    // ASCII letters: | 0x20 lower-cases them (and leaves no other byte equal to a lower-case letter's).
    if ((bytes[at + 2] | 0x20) === 0x62 && (bytes[at + 3] | 0x20) === 0x6f && (bytes[at + 4] | 0x20) === 0x64 && (bytes[at + 5] | 0x20) === 0x79) return at;
  }
  return -1;
}

const LT_SLASH = Buffer.from('</');
/** Below this many bytes a loop here beats Buffer.indexOf, whose native call costs about a microsecond. */
const SHORT_SCAN = 256;

function indexOfLtSlash(bytes: Buffer, from: number): number {
  if (bytes.length - from > SHORT_SCAN) return bytes.indexOf(LT_SLASH, from);
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === 0x3c && bytes[i + 1] === 0x2f) return i;
  return -1;
}

/** An HTML answer of a declared length up to this is held until its `</body` is found (or it ends); a larger one passes untouched. */
export const MAX_HELD_BYTES = 512 * 1024;

/**
 * Wraps `sink` so an HTML document gets the tag before its `</body`. An answer without
 * one (a fragment: htmx and Turbo swap those into a page that has the script already)
 * is left as it was. With a declared length the answer is held until `</body` shows
 * (then the length grows by the tag) or it ends; without one it streams, and the tag
 * goes in where `</body` passes.
 */
export function injectingSink(req: IncomingMessage, sink: ResponseSink, basePath = '/'): ResponseSink {
  // Only a browser's page load gets the script (connect-livereload's rule too): curl, an API
  // client or a script's fetch() sees the app's bytes as they are.
  if (!acceptsHtml(req.headers.accept)) return sink;
  return new InjectingSink(req, sink, basePath);
}

const NO_BYTES = Buffer.alloc(0);

/** One object per answer, its state made only once the answer is HTML: every request passes here in development. */
class InjectingSink implements ResponseSink {
  private active = false;
  private done = false;
  private tag = NO_BYTES;
  private carry = NO_BYTES;
  /** A declared length: its head and body wait here until the tag's place is known. */
  private held: { status: number; headers: [string, string][]; chunks: Buffer[] } | undefined = undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly sink: ResponseSink,
    private readonly basePath: string,
  ) {
    // Whole answers only when the sink takes them (the worker holds a head for a sink that does).
    if (!sink.complete) this.complete = undefined;
  }

  assigned(who: string): void {
    this.sink.assigned(who);
  }

  start(status: number, headers: [string, string][]): void {
    const sink = this.sink;
    if (skipReason(this.req.method ?? 'GET', this.req.headers, status, headers) !== undefined) return sink.start(status, headers);
    const declared = header(headers, 'content-length');
    if (declared !== undefined && !(Number(declared) <= MAX_HELD_BYTES)) return sink.start(status, headers);
    this.active = true;
    this.tag = Buffer.from(scriptTag(this.basePath, cspNonce(headers)));
    if (declared !== undefined) this.held = { status, headers, chunks: [] };
    else sink.start(status, withTag(headers, 0));
  }

  data(chunk: Buffer): void {
    const held = this.held;
    if (!this.active || this.done) return held ? void held.chunks.push(chunk) : this.sink.data(chunk);
    const bytes = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const at = findBodyClose(bytes);
    if (at >= 0) {
      this.done = true;
      this.carry = NO_BYTES;
      this.release(true);
      this.sink.data(Buffer.concat([bytes.subarray(0, at), this.tag, bytes.subarray(at)]));
      return;
    }
    const keep = Math.min(CARRY, bytes.length);
    this.carry = Buffer.from(bytes.subarray(bytes.length - keep));
    if (bytes.length > keep) {
      const ahead = bytes.subarray(0, bytes.length - keep);
      if (held) held.chunks.push(Buffer.from(ahead));
      else this.sink.data(ahead);
    }
  }

  end(): void {
    if (this.active && !this.done) {
      this.done = true;
      if (this.held) this.held.chunks.push(this.carry);
      else if (this.carry.length) this.sink.data(this.carry);
    }
    this.release(false);
    this.sink.end();
  }

  fail(failure: UpstreamFailure): void {
    this.held = undefined; // nothing went out: the proxy may still answer with its error page
    this.sink.fail(failure);
  }

  /**
   * A whole answer (it came in one read) is looked at once, and stays whole. One over
   * MAX_HELD_BYTES passes as it came, as it would streamed: whether a page gets the tag
   * must not depend on how the worker framed it (over 1 MiB it is streamed).
   */
  complete?(status: number, headers: [string, string][], body: Buffer | undefined): void {
    const sink = this.sink;
    if (!body || body.length > MAX_HELD_BYTES || skipReason(this.req.method ?? 'GET', this.req.headers, status, headers) !== undefined) return sink.complete!(status, headers, body);
    const tagged = withScriptTag(body, scriptTag(this.basePath, cspNonce(headers)));
    if (!tagged) return sink.complete!(status, headers, body); // a fragment
    sink.complete!(status, withTag(headers, tagged.length - body.length), tagged);
  }

  private release(injected: boolean): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    this.sink.start(held.status, injected ? withTag(held.headers, this.tag.length) : held.headers);
    for (const chunk of held.chunks) this.sink.data(chunk);
  }
}

/** The head once the tag is in: a longer body, and a weak validator (other bytes than the app's, as NGINX's gzip does). */
function withTag(headers: [string, string][], tagBytes: number): [string, string][] {
  return headers.map(([k, v]): [string, string] => {
    const name = k.toLowerCase();
    if (name === 'content-length') return [k, String(Number(v) + tagBytes)];
    if (name === 'etag' && !v.startsWith('W/')) return [k, `W/${v}`];
    return [k, v];
  });
}
