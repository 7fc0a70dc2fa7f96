// The heads of a request and of its answer on the worker channel: latin-1 text, fields
// split by NUL (servestack_channel.py reads and writes the same). HTTP's bytes arrive
// here as latin-1 strings already (Node's parser), so the text is lossless, and none
// can hold a NUL: the parser refuses one in a request, the runtime one from the app.
// JSON cost the front about 7 µs a request to write and as much to read the answer's.
import type { UpstreamRequest } from '../upstream/types';

/** Field order of a Request head before its header pairs (servestack_channel.REQUEST_HEAD_FIELDS). */
export const REQUEST_HEAD_FIELDS = ['method', 'path', 'query', 'scheme', 'serverName', 'serverPort', 'remoteAddr', 'remotePort', 'httpVersion', 'hasBody', 'scriptName'] as const;

/** A Request frame's payload as text (FrameWriter.sendText writes it as latin-1 bytes). */
export function requestHeadText(request: UpstreamRequest): string {
  // One join makes one flat string; a chain of `+` made a rope of some thirty pieces to flatten.
  const parts: string[] = [
    request.method, request.path, request.query, request.scheme, request.serverName, String(request.serverPort),
    request.remoteAddr, String(request.remotePort), request.httpVersion, request.body !== undefined ? '1' : '', request.scriptName ?? '',
  ];
  for (const [name, value] of request.headers) parts.push(name, value);
  return parts.join('\0');
}

/** The same head as bytes (what the worker reads). */
export function encodeRequestHead(request: UpstreamRequest): Buffer {
  return Buffer.from(requestHeadText(request), 'latin1');
}

/**
 * A Start frame's payload (or the head inside an Answer's, from `start` to `end`): the
 * status, then name and value of each header. Read field by field with indexOf: a split
 * made an array of every field first (half the time, and the front's garbage, here).
 */
export function decodeResponseHead(payload: Buffer, start = 0, end = payload.length): [number, [string, string][]] {
  const text = payload.toString('latin1', start, end);
  const headers: [string, string][] = [];
  let at = text.indexOf('\0');
  if (at < 0) return [Number(text), headers];
  const status = Number(text.slice(0, at));
  // `at` is the NUL before a name; a name without a value (a cut head) is dropped, as before.
  while (at < text.length) {
    const valueAt = text.indexOf('\0', at + 1);
    if (valueAt < 0) break;
    let next = text.indexOf('\0', valueAt + 1);
    if (next < 0) next = text.length;
    headers.push([text.slice(at + 1, valueAt), text.slice(valueAt + 1, next)]);
    at = next;
  }
  return [status, headers];
}
