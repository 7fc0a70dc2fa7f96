// Static files for one static route (the NGINX `root`/`alias` role). One handler per
// route; the caller strips the route prefix and the query and passes the rest still
// percent-encoded.
//
// Policy, in the order a request meets it:
// - GET and HEAD only; anything else is 405 with `Allow: GET, HEAD`.
// - The rest is decoded once and checked (staticPath.ts): traversal in any encoding,
//   encoded separators, NUL and every dot-name answer 404 (never 403: a client learns
//   nothing about what exists). Malformed percent-encoding is 400.
// - The path is resolved with realpath and must stay inside the root's real path, with no
//   dot-name on the way (a symlink to .env is refused too); else 404.
// - A directory without a trailing slash is a 301 to the slash form (query kept); with the
//   slash it serves its index.html, and without one it is 404 (never a listing).
//   A file asked for with a trailing slash is 404, as NGINX answers it.
// - Files answer with Content-Type (charset for text), Content-Length, a strong ETag and
//   Last-Modified, `Cache-Control: no-cache` and Accept-Ranges; 304/412 per the
//   conditional headers; Range → 206 / 416 (staticHttp.ts).
//   `no-cache` means "store, but ask every time": in development an edited CSS file must
//   show on the next reload, and the ask is a cheap 304 from memory.
// - A precompressed sibling (x.js.br, x.js.gz) no older than the file is served with
//   Content-Encoding when Accept-Encoding allows it (not for Range requests), with
//   `Vary: Accept-Encoding` on every answer for that file.
// - Without a sibling, a file of a compressible type and at least minSize bytes (the
//   route's "compress") is compressed on the fly, brotli or gzip as the client prefers
//   (compress.ts), with Vary on every answer for it. A file kept in memory is compressed
//   once per encoding: the result lives on its cache entry (counted in the byte budget),
//   so it goes when the entry goes, on the first request after an edit. Its ETag is the
//   file's with the coding appended (the bytes are fixed by the file). A streamed file is
//   compressed as it streams, chunked, with a weak ETag.
//
// Speed. The DESIGN figures: Node's own ceiling ~30k req/s, NGINX 35k on a 1 KiB file,
// Node static servers 1.6–5.7k. What those servers spend is a realpath/stat/open/read and
// fresh headers per request. Here each resolved file is an entry in a byte-bounded LRU
// holding its validators, precomputed header arrays and, for files up to 256 KiB, its
// bytes. An entry is revalidated on every request by one fs.stat of its path (size, mtime,
// ctime, inode, device) — not a TTL, because in development the request right after a save
// must see the save, and not only a watcher, because files also change from tools outside
// the editor. Concurrent requests for one entry share one stat in flight, so under load the
// cost is one stat per entry per event-loop turn; at low load it is one stat of latency.
// Larger files keep their entry (validators, paths) but stream from disk.
// The identity check assumes a file with the same device+inode+size+mtime+ctime is the
// same file that realpath confined when the entry was made; any change re-resolves it.
// File times are coarse (a kernel tick, or 1–2 s on some file systems), so a file changed
// twice within one tick keeps its stat. As git does with "racily clean" files, an entry is
// kept only once its file has been still for 2 s (racyWindowMs); until then each request
// re-reads it.
// ETags of in-memory files hash their bytes for the same reason (and an identical re-save
// keeps its ETag, so the browser still gets a 304); streamed files use size-mtime, as NGINX.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as http from 'node:http';
import type { CompressionConfig } from '../config/types';
import { compressBuffer, createCompressor, isCompressibleType, negotiateEncoding, weakenEtag, type Encoding } from './compress';
import { mimeTypes } from './mimeTypes';
import { ByteLru, type Sized } from './staticCache';
import { checkPreconditions, evaluateRange, sendStatus, type Validators } from './staticHttp';
import { hasDotSegment, isInside, parseRelPath, slashRedirectLocation } from './staticPath';

export interface StaticOptions {
  /** Files up to this many bytes are kept in memory. Default 256 KiB. */
  maxCachedFileSize?: number;
  /** Memory budget for all entries of this handler. Default 64 MiB. */
  maxCacheBytes?: number;
  /** Default "no-cache" (see above). */
  cacheControl?: string;
  /** Serve x.br / x.gz siblings. Default true. */
  precompressed?: boolean;
  /** Served for a directory asked for with a trailing slash. Default "index.html". */
  index?: string;
  /** How long a file must have been still before its entry is kept. Default 2000 ms (see above). */
  racyWindowMs?: number;
  /** Unexpected failures (not a missing file), for the server's log. */
  onError?: (err: unknown) => void;
  /** On-the-fly compression (the route's "compress"); undefined: off. */
  compress?: CompressionConfig;
}

export interface StaticStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

/** Rewrites an HTML file's bytes as served: development's live-reload tag (server/devloop). */
export interface HtmlRewriter {
  /** Names the rewrite in the ETag ([A-Za-z0-9]); one rewritten copy is kept per file and key. */
  readonly key: string;
  /** The bytes to serve instead, or undefined to serve the file as it is. */
  rewrite(html: Buffer): Buffer | undefined;
}

export interface StaticHandler {
  /**
   * relPath: the URL path after the route prefix, still percent-encoded, without the query.
   * html: applied to HTML files held in memory, on whole 200 answers (not Range ones).
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, relPath: string, html?: HtmlRewriter): void;
  /** Forget every entry (a watcher may call it; the per-request stat makes it optional). */
  invalidate(): void;
  stats(): StaticStats;
  /** Drop the memory. Requests still in flight finish; later ones are served uncached. */
  close(): void;
}

interface FileState {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface Variant extends Validators {
  encoding?: Encoding;
  logical: string; // root + segments: stat'ed (following symlinks) to revalidate
  real: string; // the confined real path: opened to stream
  state: FileState;
  body?: Buffer; // present for cached small files
  headCommon: string[]; // every 200 header except Content-Length
  head200: string[];
  head304: string[];
}

interface Entry extends Sized {
  bytes: number;
  key: string;
  type: string;
  identity: Variant;
  br?: Variant;
  gzip?: Variant;
  checks: Variant[]; // every variant: all must be unchanged for the entry to stand
  settled: boolean; // no file changed within racyWindowMs of reading it: safe to keep
  compressible: boolean; // no sibling, and the route compresses this type and size on the fly
  compressed: Partial<Record<Encoding, Variant>>; // made on the fly from identity.body
  compressing: Partial<Record<Encoding, Promise<Variant | undefined>>>;
  html: boolean; // text/html: an HtmlRewriter may apply
  rewritten?: Map<string, Variant | false>; // by HtmlRewriter key; false: the rewriter left it as it is
  waiters?: Array<(fresh: boolean) => void>;
}

type Resolution = { kind: 'entry'; entry: Entry } | { kind: 'redirect' } | { kind: 'status'; status: 404 | 500 };

const KiB = 1024;
const ENTRY_OVERHEAD = 1 * KiB; // strings and header arrays, roughly
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0);
const STREAM_CHUNK = 64 * KiB;
const NOT_FOUND: Resolution = { kind: 'status', status: 404 };
const REDIRECT: Resolution = { kind: 'redirect' };
const SIBLINGS: ReadonlyArray<[Encoding, string]> = [['br', '.br'], ['gzip', '.gz']];
const ALLOW = ['Allow', 'GET, HEAD'];
// What the file system says when a path is simply not servable: all of them are a 404.
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EPERM', 'EISDIR', 'EINVAL']);

export function createStaticHandler(root: string, opts: StaticOptions = {}): StaticHandler {
  const maxFile = opts.maxCachedFileSize ?? 256 * KiB;
  const cacheControl = opts.cacheControl ?? 'no-cache';
  const precompressed = opts.precompressed ?? true;
  const indexName = opts.index ?? 'index.html';
  // Longer than the coarsest common file-time granularity (FAT: 2 s).
  const racyMs = opts.racyWindowMs ?? 2000;
  const onError = opts.onError ?? (() => undefined);
  const compress = opts.compress;
  const cache = new ByteLru<Entry>(opts.maxCacheBytes ?? 64 * KiB * KiB);
  const inflight = new Map<string, Promise<Resolution>>();
  let rootReal: string | undefined; // resolved lazily: the folder may appear after start
  let closed = false;

  function handle(req: http.IncomingMessage, res: http.ServerResponse, relPath: string, html?: HtmlRewriter): void {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return sendStatus(req, res, 405, ALLOW);
    const parsed = parseRelPath(relPath);
    if ('status' in parsed) return sendStatus(req, res, parsed.status);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const slash = url.charCodeAt((q === -1 ? url.length : q) - 1) === 47; /* / */
    const key = parsed.segments.join('/') + (slash ? '/' : '');
    const entry = cache.get(key);
    if (entry === undefined) return lookup(req, res, parsed.segments, slash, key, html);
    revalidate(entry, (fresh) => {
      if (fresh) return respond(req, res, entry, html);
      cache.delete(key, entry);
      lookup(req, res, parsed.segments, slash, key, html);
    });
  }

  // ── Cache hit: one shared stat per entry in flight ───────────────────────────────
  function revalidate(entry: Entry, done: (fresh: boolean) => void): void {
    if (entry.waiters) {
      entry.waiters.push(done);
      return;
    }
    const waiters = [done];
    entry.waiters = waiters;
    let pending = entry.checks.length;
    let fresh = true;
    for (const v of entry.checks) {
      fs.stat(v.logical, (err, st) => {
        if (err || !sameState(st, v.state)) fresh = false;
        if (--pending > 0) return;
        entry.waiters = undefined;
        for (const w of waiters) {
          try {
            w(fresh);
          } catch (e) {
            onError(e); // one broken response must not starve the others waiting
          }
        }
      });
    }
  }

  // ── Cache miss: resolve once per key in flight ───────────────────────────────────
  function lookup(req: http.IncomingMessage, res: http.ServerResponse, segments: string[], slash: boolean, key: string, html: HtmlRewriter | undefined): void {
    let p = inflight.get(key);
    if (!p) {
      p = resolve(segments, slash, key).then((r) => {
        inflight.delete(key);
        if (r.kind === 'entry' && !closed && r.entry.settled) cache.set(key, r.entry);
        return r;
      });
      inflight.set(key, p);
    }
    void p.then((r) => {
      if (r.kind === 'entry') respond(req, res, r.entry, html);
      else if (r.kind === 'redirect') sendStatus(req, res, 301, ['Location', slashRedirectLocation(req.url ?? '/')]);
      else sendStatus(req, res, r.status);
    }).catch(onError);
  }

  /** Never rejects: a missing file is a 404, anything unexpected a logged 500. */
  async function resolve(segments: string[], slash: boolean, key: string): Promise<Resolution> {
    try {
      rootReal ??= await fs.promises.realpath(root);
      const base = rootReal;
      const logical = path.join(base, ...segments);
      let real = await confine(base, logical);
      if (real === undefined) return NOT_FOUND;
      let st = await fs.promises.stat(real);
      let fileLogical = logical;
      if (st.isDirectory()) {
        if (!slash) return REDIRECT;
        fileLogical = path.join(logical, indexName);
        real = await confine(base, path.join(real, indexName));
        if (real === undefined) return NOT_FOUND;
        st = await fs.promises.stat(real);
        if (!st.isFile()) return NOT_FOUND;
      } else if (!st.isFile() || slash) {
        return NOT_FOUND;
      }
      const type = mimeTypes().contentType(path.extname(fileLogical)) || 'application/octet-stream';
      const identity = await loadVariant(fileLogical, real, type, undefined);
      if (identity === undefined) return NOT_FOUND;
      const variants: Partial<Record<Encoding, Variant>> = {};
      const checks = [identity];
      if (precompressed) {
        for (const [encoding, ext] of SIBLINGS) {
          const v = await loadSibling(base, fileLogical + ext, type, encoding, identity.state.mtimeMs);
          if (v) checks.push((variants[encoding] = v));
        }
        if (checks.length > 1) for (const v of checks) addVary(v);
      }
      const compressible = compress !== undefined && checks.length === 1 && identity.size > 0 && identity.size >= compress.minSize && isCompressibleType(type, compress.types);
      if (compressible) addVary(identity);
      const bytes = checks.reduce((n, v) => n + (v.body?.length ?? 0) + ENTRY_OVERHEAD, 0);
      const now = Date.now();
      const settled = checks.every((v) => now - Math.max(v.state.mtimeMs, v.state.ctimeMs) > racyMs);
      const html = type.startsWith('text/html');
      return { kind: 'entry', entry: { key, type, identity, ...variants, checks, bytes, settled, compressible, compressed: {}, compressing: {}, html } };
    } catch (err) {
      if (isMissing(err)) return NOT_FOUND;
      onError(err);
      return { kind: 'status', status: 500 };
    }
  }

  /** The real path of `logical` when it lies inside the root and passes no dot-name; else undefined. */
  async function confine(base: string, logical: string): Promise<string | undefined> {
    const real = await fs.promises.realpath(logical);
    if (!isInside(base, real) || hasDotSegment(base, real)) return undefined;
    return real;
  }

  async function loadSibling(base: string, logical: string, type: string, encoding: Encoding, minMtimeMs: number): Promise<Variant | undefined> {
    try {
      const real = await confine(base, logical);
      if (real === undefined) return undefined;
      const v = await loadVariant(logical, real, type, encoding);
      // A sibling older than its file is stale (the file was edited, not rebuilt): skip it.
      return v && v.state.mtimeMs >= minMtimeMs ? v : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Opens the file once: validators come from the same descriptor the bytes are read from. */
  async function loadVariant(logical: string, real: string, type: string, encoding: Encoding | undefined): Promise<Variant | undefined> {
    const fh = await fs.promises.open(real, OPEN_FLAGS);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      let body: Buffer | undefined;
      if (st.size <= maxFile && !closed) {
        body = await fh.readFile();
        // Changed while we read: serve it streamed this time; the next stat re-resolves.
        if (body.length !== st.size) body = undefined;
      }
      return buildVariant(logical, real, st, type, encoding, body);
    } finally {
      await fh.close();
    }
  }

  function buildVariant(logical: string, real: string, st: fs.Stats, type: string, encoding: Encoding | undefined, body: Buffer | undefined): Variant {
    const state: FileState = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    // Strong. In memory: size and a hash of the bytes. Streamed: size-mtime (NGINX's), in
    // microseconds. The encoding is part of it: each encoding is its own representation.
    const suffix = encoding === undefined ? '' : encoding === 'br' ? '-br' : '-gz';
    const version = body ? createHash('sha1').update(body).digest('base64url') : Math.floor(st.mtimeMs * 1000).toString(16);
    const etag = `"${st.size.toString(16)}-${version}${suffix}"`;
    const mtimeSec = Math.floor(st.mtimeMs / 1000);
    const lastModified = new Date(mtimeSec * 1000).toUTCString();
    const headCommon = [
      'Content-Type', type,
      'ETag', etag,
      'Last-Modified', lastModified,
      'Cache-Control', cacheControl,
      'Accept-Ranges', 'bytes',
      'X-Content-Type-Options', 'nosniff',
    ];
    if (encoding) headCommon.push('Content-Encoding', encoding);
    const v: Variant = { encoding, logical, real, state, body, etag, lastModified, mtimeSec, size: st.size, headCommon, head200: [], head304: [] };
    fillHeads(v);
    return v;
  }

  function fillHeads(v: Variant): void {
    v.head200 = ['Content-Length', String(v.size), ...v.headCommon];
    v.head304 = ['ETag', v.etag, 'Last-Modified', v.lastModified, 'Cache-Control', cacheControl];
    if (v.headCommon.includes('Vary')) v.head304.push('Vary', 'Accept-Encoding');
  }

  function addVary(v: Variant): void {
    v.headCommon.push('Vary', 'Accept-Encoding');
    fillHeads(v);
  }

  // ── Answering ──────────────────────────────────────────────────────────────────
  function respond(req: http.IncomingMessage, res: http.ServerResponse, entry: Entry, html: HtmlRewriter | undefined): void {
    if (res.headersSent || res.destroyed) return;
    const headers = req.headers;
    // Range is defined for GET only (RFC 9110 §14.2); HEAD answers as a full GET would.
    const hasRange = req.method === 'GET' && headers.range !== undefined;
    // A rewritten page is served uncompressed, whole, with its own ETag; a Range answered
    // with a part (206) gets the file's bytes, under the file's ETag.
    if (entry.html && html !== undefined && entry.identity.body !== undefined && (!hasRange || evaluateRange(headers, entry.identity).kind === 'full')) {
      const page = rewritten(entry, html);
      if (page) return fromMemory(req, res, page, false);
    }
    let v = entry.identity;
    if (!hasRange && (entry.br || entry.gzip)) {
      const offered: Encoding[] = [];
      if (entry.br) offered.push('br');
      if (entry.gzip) offered.push('gzip');
      const chosen = negotiateEncoding(headers['accept-encoding'], offered);
      if (chosen) v = entry[chosen]!;
    } else if (!hasRange && entry.compressible) {
      const chosen = negotiateEncoding(headers['accept-encoding']);
      if (chosen && v.body === undefined) return stream(req, res, entry, v, false, chosen);
      if (chosen) {
        const made = entry.compressed[chosen];
        if (!made) {
          void compressed(entry, chosen).then((cv) => fromMemory(req, res, cv ?? entry.identity, false)).catch(onError);
          return;
        }
        v = made;
      }
    }
    if (v.body === undefined) return stream(req, res, entry, v, hasRange);
    fromMemory(req, res, v, hasRange);
  }

  /** The entry's body compressed once per encoding, shared by the requests that wait for it. */
  function compressed(entry: Entry, encoding: Encoding): Promise<Variant | undefined> {
    let pending = entry.compressing[encoding];
    if (!pending) {
      const identity = entry.identity;
      pending = compressBuffer(encoding, compress!, identity.body!).then(
        (body) => {
          const v = compressedVariant(identity, encoding, body);
          entry.compressed[encoding] = v;
          entry.compressing[encoding] = undefined;
          const grown = body.length + ENTRY_OVERHEAD;
          entry.bytes += grown;
          cache.grew(entry.key, entry, grown);
          return v;
        },
        (err: unknown) => {
          onError(err);
          entry.compressing[encoding] = undefined;
          return undefined; // the identity is served instead
        },
      );
      entry.compressing[encoding] = pending;
    }
    return pending;
  }

  /** The entry's HTML as `html` rewrites it, made once per key and kept (and counted) on the entry. */
  function rewritten(entry: Entry, html: HtmlRewriter): Variant | undefined {
    const made = entry.rewritten?.get(html.key);
    if (made !== undefined) return made || undefined;
    const identity = entry.identity;
    const body = html.rewrite(identity.body!);
    let v: Variant | undefined;
    if (body) {
      const etag = `${identity.etag.slice(0, -1)}-${html.key}"`;
      // No Accept-Ranges: ranges are served of the file, not of this page.
      const headCommon = identity.headCommon.filter((_, i, all) => all[i - (i % 2)] !== 'Accept-Ranges');
      headCommon[headCommon.indexOf('ETag') + 1] = etag;
      v = { ...identity, body, etag, size: body.length, headCommon, head200: [], head304: [] };
      fillHeads(v);
      const grown = body.length + ENTRY_OVERHEAD;
      entry.bytes += grown;
      cache.grew(entry.key, entry, grown);
    }
    (entry.rewritten ??= new Map()).set(html.key, v ?? false);
    return v;
  }

  function compressedVariant(identity: Variant, encoding: Encoding, body: Buffer): Variant {
    const etag = `${identity.etag.slice(0, -1)}-${encoding === 'br' ? 'br' : 'gz'}z"`;
    const headCommon = [...identity.headCommon];
    headCommon[headCommon.indexOf('ETag') + 1] = etag;
    headCommon.push('Content-Encoding', encoding);
    const v: Variant = { ...identity, encoding, body, etag, size: body.length, headCommon, head200: [], head304: [] };
    fillHeads(v);
    return v;
  }

  function fromMemory(req: http.IncomingMessage, res: http.ServerResponse, v: Variant, hasRange: boolean): void {
    if (res.headersSent || res.destroyed) return;
    const headers = req.headers;
    const body = v.body!;
    const pre = checkPreconditions(headers, v);
    if (pre === 304) {
      res.writeHead(304, v.head304);
      res.end();
      return;
    }
    if (pre === 412) return sendStatus(req, res, 412);
    if (hasRange) {
      const r = evaluateRange(headers, v);
      if (r.kind === 'unsatisfiable') return sendStatus(req, res, 416, ['Content-Range', `bytes */${v.size}`]);
      if (r.kind === 'partial') {
        res.writeHead(206, partialHead(v, r.start, r.end));
        res.end(body.subarray(r.start, r.end + 1));
        return;
      }
    }
    res.writeHead(200, v.head200);
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  }

  /** Large files: open, check the descriptor is still the file the entry describes, stream. */
  function stream(req: http.IncomingMessage, res: http.ServerResponse, entry: Entry, cached: Variant, hasRange: boolean, encoding?: Encoding): void {
    fs.open(cached.real, OPEN_FLAGS, (openErr, fd) => {
      if (openErr) {
        cache.delete(entry.key, entry);
        if (!isMissing(openErr)) onError(openErr);
        return sendStatus(req, res, isMissing(openErr) ? 404 : 500);
      }
      const closeFd = (): void => fs.close(fd, (err) => err && onError(err));
      fs.fstat(fd, (statErr, st) => {
        if (statErr || !st.isFile() || res.destroyed) {
          closeFd();
          return sendStatus(req, res, 404);
        }
        let v = cached;
        if (!sameState(st, cached.state)) {
          // Changed since the entry was made: answer from what the descriptor says now.
          cache.delete(entry.key, entry);
          v = buildVariant(cached.logical, cached.real, st, entry.type, cached.encoding, undefined);
          if (entry.checks.length > 1 || entry.compressible) addVary(v);
        }
        const pre = checkPreconditions(req.headers, v);
        let start = 0;
        let end = v.size - 1;
        let head = v.head200;
        let status = 200;
        if (pre === 'ok' && hasRange) {
          const r = evaluateRange(req.headers, v);
          if (r.kind === 'unsatisfiable') {
            closeFd();
            return sendStatus(req, res, 416, ['Content-Range', `bytes */${v.size}`]);
          }
          if (r.kind === 'partial') {
            ({ start, end } = r);
            head = partialHead(v, start, end);
            status = 206;
          }
        }
        if (encoding && status === 200) head = streamedCompressedHead(v, encoding);
        if (pre !== 'ok' || req.method === 'HEAD' || v.size === 0) {
          closeFd();
          if (pre === 412) return sendStatus(req, res, 412);
          res.writeHead(pre === 304 ? 304 : status, pre === 304 ? v.head304 : head);
          res.end();
          return;
        }
        res.writeHead(status, head);
        if (encoding && status === 200) pipeCompressed(fd, v.real, v.size, createCompressor(encoding, compress!, v.size), res, onError);
        else pipeRange(fd, v.real, start, end, res, onError);
      });
    });
  }

  return {
    handle,
    invalidate: () => cache.clear(),
    stats: () => ({ entries: cache.size, bytes: cache.usedBytes, hits: cache.hits, misses: cache.misses }),
    close: () => {
      closed = true;
      cache.clear();
    },
  };
}

/**
 * Reads bytes start..end of fd (closing it) and calls `complete` once all of them came.
 * If the file shrank underneath us, the body would fall short (of Content-Length, or of
 * the file, when compressed: it would look complete), so the connection is cut instead.
 */
function readExactly(fd: number, file: string, start: number, end: number, res: http.ServerResponse, onError: (err: unknown) => void, complete: () => void): fs.ReadStream {
  const expected = end - start + 1;
  let sent = 0;
  const rs = fs.createReadStream(file, { fd, start, end, highWaterMark: STREAM_CHUNK, autoClose: true });
  rs.on('data', (chunk) => {
    sent += chunk.length;
  });
  rs.on('error', (err) => {
    onError(err);
    res.destroy();
  });
  rs.on('end', () => {
    if (sent === expected) complete();
    else res.destroy();
  });
  return rs;
}

/** Streams bytes start..end of fd into res. */
function pipeRange(fd: number, file: string, start: number, end: number, res: http.ServerResponse, onError: (err: unknown) => void): void {
  const rs = readExactly(fd, file, start, end, res, onError, () => res.end());
  res.on('close', () => rs.destroy());
  rs.pipe(res, { end: false });
}

/** Compresses the whole file as it streams (chunked). */
function pipeCompressed(fd: number, file: string, size: number, compressor: NodeJS.ReadWriteStream & { destroy(): void }, res: http.ServerResponse, onError: (err: unknown) => void): void {
  const rs = readExactly(fd, file, 0, size - 1, res, onError, () => compressor.end());
  compressor.on('error', (err) => {
    onError(err);
    res.destroy();
  });
  res.on('close', () => {
    rs.destroy();
    compressor.destroy();
  });
  rs.pipe(compressor, { end: false }).pipe(res);
}

/** A streamed file compressed on the fly: no length, a weak ETag (the bytes are made per request). */
function streamedCompressedHead(v: Variant, encoding: Encoding): string[] {
  const head = v.headCommon.filter((_, i, all) => all[i - (i % 2)] !== 'Accept-Ranges');
  head[head.indexOf('ETag') + 1] = weakenEtag(v.etag);
  head.push('Content-Encoding', encoding);
  return head;
}

function partialHead(v: Variant, start: number, end: number): string[] {
  return ['Content-Length', String(end - start + 1), 'Content-Range', `bytes ${start}-${end}/${v.size}`, ...v.headCommon];
}

function sameState(st: fs.Stats, s: FileState): boolean {
  return st.size === s.size && st.mtimeMs === s.mtimeMs && st.ctimeMs === s.ctimeMs && st.ino === s.ino && st.dev === s.dev;
}

function isMissing(err: unknown): boolean {
  return typeof err === 'object' && err !== null && MISSING.has((err as NodeJS.ErrnoException).code ?? '');
}
