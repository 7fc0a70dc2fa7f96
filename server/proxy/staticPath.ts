// Turning the URL's rest into path segments under a static root, pure and strict. Every
// request runs these checks, cache hit or not, so no cache key can bypass them.
//
// - Decode exactly once. "%252e%252e" becomes the literal name "%2e%2e", never "..".
// - An encoded slash, backslash or NUL ("%2f", "%5c", "%00") is refused, not decoded:
//   "a%2fb" is one segment in the URL but would be two on disk.
// - After decoding, a backslash or NUL anywhere is refused (Windows separators, C strings).
// - Empty segments collapse ("//etc/passwd" is "etc/passwd" under the root, never "/").
// - Any segment starting with "." is refused: that covers "..", "." and every dotfile or
//   dot-directory (.git, .env, .venv). Browsers resolve "." and ".." before sending, so
//   only hand-made requests carry them. The answer is 404, not 403, so a client learns
//   nothing about what exists (as `send` does with dotfiles: 'ignore').
// - On Windows, ":" is refused too (drive letters, alternate data streams "x::$DATA").
// Malformed percent-encoding ("%e0%a4%a") is a 400, as `send` answers it.
// The caller still confines the resolved real path to the root's real path (symlinks).
import * as path from 'node:path';

export type ParsedRelPath = { segments: string[] } | { status: 400 | 404 };

const ENCODED_FORBIDDEN = /%(?:2f|5c|00)/i;
const IS_WINDOWS = process.platform === 'win32';

export function parseRelPath(rel: string): ParsedRelPath {
  let decoded = rel;
  if (rel.includes('%')) {
    if (ENCODED_FORBIDDEN.test(rel)) return { status: 404 };
    try {
      decoded = decodeURIComponent(rel);
    } catch {
      // URIError is the only thing decodeURIComponent throws: malformed input.
      return { status: 400 };
    }
  }
  if (decoded.includes('\\') || decoded.includes('\0')) return { status: 404 };
  const segments: string[] = [];
  for (const segment of decoded.split('/')) {
    if (segment === '') continue;
    if (segment.charCodeAt(0) === 46 /* . */) return { status: 404 };
    if (IS_WINDOWS && segment.includes(':')) return { status: 404 };
    segments.push(segment);
  }
  return { segments };
}

/** True when `real` is `rootReal` or below it. Both must be real (symlink-free) paths. */
export function isInside(rootReal: string, real: string): boolean {
  if (real === rootReal) return true;
  const prefix = rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep;
  return real.startsWith(prefix);
}

/** True when a real path below the root passes through a dot-name (a symlink to .env, say). */
export function hasDotSegment(rootReal: string, real: string): boolean {
  const rel = path.relative(rootReal, real);
  if (rel === '') return false;
  return rel.split(path.sep).some((s) => s.startsWith('.'));
}

/**
 * A Location value for the missing-slash redirect: the client's own path with one
 * leading slash (so "//evil.example/x" cannot become a protocol-relative open redirect)
 * and backslashes and anything outside printable ASCII percent-encoded (browsers read
 * "/\x" as "//x"; Node reads the target as latin1, so each char is one request byte).
 */
export function slashRedirectLocation(url: string): string {
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  const safe = (pathname.replace(/^\/+/, '/') + '/' + query).replace(/[^\x21-\x5b\x5d-\x7e]/g, (c) =>
    '%' + (c.charCodeAt(0) & 0xff).toString(16).toUpperCase().padStart(2, '0'),
  );
  return safe.startsWith('/') ? safe : '/' + safe;
}
