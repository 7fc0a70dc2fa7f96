// The heads of a request and of its answer on the worker channel: latin-1 text, fields
// split by NUL (servestack_channel.py reads and writes the same). HTTP's bytes arrive
// here as latin-1 strings already (Node's parser), so the text is lossless, and none
// can hold a NUL: the parser refuses one in a request, the runtime one from the app.
// JSON cost the front about 7 µs a request to write and as much to read the answer's.
import type { UpstreamRequest } from '../upstream/types';

/** Field order of a Request head before its header pairs (servestack_channel.REQUEST_HEAD_FIELDS). */
export const REQUEST_HEAD_FIELDS = ['method', 'path', 'query', 'scheme', 'serverName', 'serverPort', 'remoteAddr', 'remotePort', 'httpVersion', 'hasBody', 'scriptName'] as const;

export function encodeRequestHead(request: UpstreamRequest): Buffer {
  let text =
    request.method + '\0' + request.path + '\0' + request.query + '\0' + request.scheme + '\0' + request.serverName + '\0' +
    request.serverPort + '\0' + request.remoteAddr + '\0' + request.remotePort + '\0' + request.httpVersion + '\0' +
    (request.body !== undefined ? '1' : '') + '\0' + (request.scriptName ?? '');
  for (const [name, value] of request.headers) text += '\0' + name + '\0' + value;
  return Buffer.from(text, 'latin1');
}

/** A Start frame's payload: the status, then name and value of each header. */
export function decodeResponseHead(payload: Buffer): [number, [string, string][]] {
  const fields = payload.toString('latin1').split('\0');
  const headers: [string, string][] = [];
  for (let i = 1; i + 1 < fields.length; i += 2) headers.push([fields[i], fields[i + 1]]);
  return [Number(fields[0]), headers];
}
