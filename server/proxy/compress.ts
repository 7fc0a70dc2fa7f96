// Compression on the fly (NGINX's gzip filter, Caddy's encode): brotli or gzip, as the
// client's Accept-Encoding prefers, for compressible types of at least minSize bytes.
// Pure negotiation and policy first, then the stage that compresses app answers as they
// stream. Static files use the same policy and compress once (static.ts).
//
// Never compressed: HEAD, 1xx/204/206/304, a request with Range (the bytes asked for are
// of the identity), an answer with Content-Encoding or Content-Range already, or
// `Cache-Control: no-transform` (RFC 9110 §7.7). A compressed answer loses Content-Length
// (it is chunked) and Accept-Ranges, and a strong ETag becomes weak: the bytes differ
// from the app's, and only the app knows its validator. Every answer that could have
// been compressed carries `Vary: Accept-Encoding`, so a cache keeps the two apart.
//
// Streaming: each burst of upstream chunks (one event-loop turn) is flushed at once, so a
// server-sent event or a slow generator reaches the client as it is written; the ratio
// lost to a flush is small next to a stream that stalls in a compressor.
// CPU: brotli quality 4 and gzip 6 by default; higher brotli qualities cost many times
// the CPU on the fly (they pay off only for files compressed once, ahead of time).
import zlib from 'node:zlib';
import type { CompressionConfig } from '../config/types';
import { headerValue, removeHeader, setHeader, type BodySink, type ResponseStage, type StageContext } from './responseStages';

export type Encoding = 'br' | 'gzip';
const BOTH: readonly Encoding[] = ['br', 'gzip'];

interface Weights {
  br?: number;
  gzip?: number;
  star?: number;
}

// Browsers send one Accept-Encoding string over and over: parse each distinct one once.
const weightMemo = new Map<string, Weights>();

/** q of each coding ServeStack can send, and of "*"; a malformed q counts as 0 (refused). */
export function encodingWeights(header: string): Weights {
  const known = weightMemo.get(header);
  if (known) return known;
  const weights: Weights = {};
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';');
    const coding = name.trim().toLowerCase();
    if (!coding) continue;
    let q = 1;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq >= 0 && p.slice(0, eq).trim().toLowerCase() === 'q') {
        const text = p.slice(eq + 1).trim();
        q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(text) ? Number(text) : 0;
      }
    }
    const key = coding === 'x-gzip' ? 'gzip' : coding === '*' ? 'star' : coding;
    if (key === 'br' || key === 'gzip' || key === 'star') weights[key] = Math.max(weights[key] ?? 0, q);
  }
  if (weightMemo.size >= 64) weightMemo.clear(); // bounded: hostile clients can vary it
  weightMemo.set(header, weights);
  return weights;
}

/**
 * The coding of `offered` the client prefers: the highest q above 0, brotli first on a tie
 * (smaller for the same CPU). "*" stands for every coding not named. undefined: send the
 * identity, which RFC 9110 lets a server send even when "identity;q=0" refuses it.
 */
export function negotiateEncoding(header: string | string[] | undefined, offered: readonly Encoding[] = BOTH): Encoding | undefined {
  if (header === undefined) return undefined;
  const weights = encodingWeights(Array.isArray(header) ? header.join(',') : header);
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const coding of BOTH) {
    if (!offered.includes(coding)) continue;
    const q = weights[coding] ?? weights.star ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}

// ── Policy ─────────────────────────────────────────────────────────────────────────

const patternMemo = new WeakMap<readonly string[], { re: RegExp; answers: Map<string, boolean> }>();
/** Distinct Content-Type values remembered per pattern list (an app sends a handful; a hostile one cannot grow it). */
const MAX_REMEMBERED_TYPES = 64;

/** Whether a Content-Type (parameters ignored) matches one of the patterns ("text/*", "application/*+json"). */
export function isCompressibleType(contentType: string | undefined, patterns: readonly string[]): boolean {
  if (!contentType) return false;
  let memo = patternMemo.get(patterns);
  if (!memo) {
    const alternatives = patterns.map((p) => p.toLowerCase().replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/;]*'));
    memo = { re: new RegExp(`^(?:${alternatives.join('|') || '(?!)'})$`), answers: new Map() };
    patternMemo.set(patterns, memo);
  }
  const known = memo.answers.get(contentType);
  if (known !== undefined) return known;
  const semi = contentType.indexOf(';');
  const answer = memo.re.test((semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase());
  if (memo.answers.size < MAX_REMEMBERED_TYPES) memo.answers.set(contentType, answer);
  return answer;
}

/** Adds Accept-Encoding to a Vary value (or starts one); "*" and an existing mention stay as they are. */
export function varyWithAcceptEncoding(vary: string | undefined): string {
  if (!vary) return 'Accept-Encoding';
  const tokens = vary.split(',').map((t) => t.trim().toLowerCase());
  if (tokens.includes('*') || tokens.includes('accept-encoding')) return vary;
  return `${vary}, Accept-Encoding`;
}

/** W/"x" for a strong "x"; a weak or missing tag stays. */
export function weakenEtag(etag: string): string {
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}

const NO_BODY_STATUS = new Set([204, 206, 304]);

/** The answers that need no object per request (callers only read them). */
const NONE: { encoding: Encoding | undefined; vary: boolean } = Object.freeze({ encoding: undefined, vary: false });
const VARY_ONLY: { encoding: Encoding | undefined; vary: boolean } = Object.freeze({ encoding: undefined, vary: true });

/**
 * The coding to compress an app's answer with, or undefined; and whether the answer
 * needs `Vary: Accept-Encoding` either way (it could have been compressed).
 */
export function compressionFor(
  policy: CompressionConfig,
  request: { method: string; headers: { range?: string; 'accept-encoding'?: string | string[] } },
  status: number,
  headers: [string, string][],
): { encoding: Encoding | undefined; vary: boolean } {
  if (request.method === 'HEAD' || status < 200 || NO_BODY_STATUS.has(status)) return NONE;
  // Each test below alone says "no"; the cheapest and likeliest go first (most API answers are small).
  const length = headerValue(headers, 'content-length');
  if (length !== undefined && Number(length) < policy.minSize) return NONE;
  if (!isCompressibleType(headerValue(headers, 'content-type'), policy.types)) return NONE;
  const encoded = headerValue(headers, 'content-encoding');
  if (encoded !== undefined && encoded.trim().toLowerCase() !== 'identity') return NONE;
  if (headerValue(headers, 'content-range') !== undefined) return NONE;
  const cacheControl = headerValue(headers, 'cache-control');
  if (cacheControl !== undefined && /(^|,)\s*no-transform\s*(,|$)/i.test(cacheControl)) return NONE;
  // A Range request answered in full: the client asked for identity bytes, it gets them.
  if (request.headers.range !== undefined) return VARY_ONLY;
  return { encoding: negotiateEncoding(request.headers['accept-encoding']), vary: true };
}

/** A compressor for one answer; `sizeHint` (bytes, when known) lets brotli size its window. */
export function createCompressor(encoding: Encoding, policy: CompressionConfig, sizeHint?: number): zlib.Gzip | zlib.BrotliCompress {
  if (encoding === 'gzip') return zlib.createGzip({ level: policy.gzipLevel });
  const params: Record<number, number> = {
    [zlib.constants.BROTLI_PARAM_QUALITY]: policy.brotliQuality,
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
  };
  if (sizeHint !== undefined) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
  return zlib.createBrotliCompress({ params });
}

/** Compresses a whole body at once (a static file kept in memory). */
export function compressBuffer(encoding: Encoding, policy: CompressionConfig, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, out: Buffer) => (error ? reject(error) : resolve(out));
    if (encoding === 'gzip') zlib.gzip(body, { level: policy.gzipLevel }, done);
    else {
      zlib.brotliCompress(body, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: policy.brotliQuality,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      }, done);
    }
  });
}

/** The head of a compressed answer: coding set, length and ranges dropped, ETag weakened, Vary added. */
export function compressedHead(headers: [string, string][], encoding: Encoding): [string, string][] {
  let out = removeHeader(removeHeader(headers, 'content-length'), 'accept-ranges');
  out = setHeader(out, 'Content-Encoding', encoding);
  const etag = headerValue(out, 'etag');
  if (etag !== undefined) out = setHeader(out, 'ETag', weakenEtag(etag));
  return out;
}

// ── The stage for app answers ────────────────────────────────────────────────────

/** Compression as a response stage (a route with "compress": false has none: server.ts). */
export function compressionStage(policy: CompressionConfig): ResponseStage {
  return (context: StageContext) => {
    const { encoding, vary } = compressionFor(policy, { method: context.method, headers: context.requestHeaders as never }, context.status, context.headers);
    if (vary) context.headers = setHeader(context.headers, 'Vary', varyWithAcceptEncoding(headerValue(context.headers, 'vary')));
    if (!encoding) return undefined;
    const length = headerValue(context.headers, 'content-length');
    context.headers = compressedHead(context.headers, encoding);
    return (next) => new CompressingSink(createCompressor(encoding, policy, length === undefined ? undefined : Number(length)), next, context);
  };
}

/** Compresses what it is given into the next sink, flushing once per burst of chunks. */
class CompressingSink implements BodySink {
  private flushQueued = false;
  private ended = false;
  private holding = false;
  private aborted = false;

  constructor(private readonly compressor: zlib.Gzip | zlib.BrotliCompress, private readonly next: BodySink, private readonly flow: StageContext) {
    compressor.on('data', (chunk: Buffer) => {
      if (!this.aborted) next.write(chunk);
    });
    compressor.on('end', () => {
      if (!this.aborted) next.end();
    });
    compressor.on('error', () => this.abort());
  }

  write(chunk: Buffer): void {
    if (this.ended || this.aborted) return;
    // The compressor works off the event loop; while its input queue is full, hold the upstream.
    if (!this.compressor.write(chunk) && !this.holding) {
      this.holding = true;
      this.flow.hold();
      this.compressor.once('drain', () => {
        this.holding = false;
        if (!this.aborted) this.flow.release();
      });
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  }

  end(): void {
    if (this.ended || this.aborted) return;
    this.ended = true;
    this.compressor.end();
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.compressor.destroy();
    this.next.abort();
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.ended || this.aborted) return;
    const kind = this.compressor instanceof zlib.Gzip ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH;
    this.compressor.flush(kind);
  };
}
