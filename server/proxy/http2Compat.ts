// HTTP/2 requests and responses shaped as the rest of the proxy expects HTTP/1.1 ones, so
// routing, checks, forwarding and the access log see one kind of request:
// - the request's raw header list loses its pseudo-headers (`:method`, `:path`, …: they
//   are the request line, never header fields an upstream may see) and gains `Host` from
//   `:authority` when the client sent no Host (RFC 9113 §8.3.1);
// - a request body with no Content-Length reads as chunked (see below);
// - the response drops the connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2:
//   Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade), silently:
//   the proxy's own `Connection: close` means nothing on a multiplexed connection, and
//   one an app sends must not reset the stream;
// - `_header`, the head as it went out, reads as an HTTP/1.1-style head (the access log's
//   byte count and the request inspector read it; Node's HTTP/2 gives only a boolean).
// node:http2 loads only for an HTTPS listener (http2Classes): a plain HTTP server never
// needs it, and loading it cost about 1.7 MiB of the front's memory.
import type * as Http2 from 'node:http2';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, OutgoingHttpHeader } from 'node:http';

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

function allowed(name: string): boolean {
  return !CONNECTION_SPECIFIC.has(name.toLowerCase());
}

function defineClasses(http2: typeof Http2) {
  class Http2Request extends http2.Http2ServerRequest {
    constructor(stream: Http2.ServerHttp2Stream, headers: IncomingHttpHeaders, options: object | undefined, rawHeaders: string[]) {
      super(stream, headers, options as never, rawHeaders);
      const kept: string[] = [];
      let hasHost = false;
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i];
        if (name.startsWith(':')) continue;
        if (name.toLowerCase() === 'host') hasHost = true;
        kept.push(name, rawHeaders[i + 1]);
      }
      const authority = headers[':authority'];
      if (!hasHost && typeof authority === 'string') {
        kept.unshift('host', authority);
        headers.host = authority;
      }
      rawHeaders.length = 0;
      rawHeaders.push(...kept);
      // A body without Content-Length: HTTP/2 frames it with DATA frames, where HTTP/1.1 would
      // say chunked. The proxy decides "has a body" from these fields, so it reads as chunked
      // here (in the parsed fields only: the raw list, which upstreams and checks read, is as sent).
      if (!stream.endAfterHeaders && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    }
  }

  class Http2Response extends http2.Http2ServerResponse {
    // @ts-expect-error: a getter for what @types/node does not declare (Node's own is a boolean getter)
    override get _header(): string | null {
      if (!this.headersSent) return null;
      let head = `HTTP/2 ${this.statusCode}\r\n`;
      for (const [name, value] of Object.entries(this.getHeaders())) {
        if (name.startsWith(':') || value === undefined) continue;
        for (const one of Array.isArray(value) ? value : [value]) head += `${name}: ${one}\r\n`;
      }
      return `${head}\r\n`;
    }

    override setHeader(name: string, value: number | string | readonly string[]): this {
      if (allowed(name)) super.setHeader(name, value);
      return this;
    }

    override appendHeader(name: string, value: string | readonly string[]): this {
      if (allowed(name)) super.appendHeader(name, value as string | string[]);
      return this;
    }

    // Node's writeHead takes an object, a flat [name, value, …] list or a list of pairs.
    override writeHead(statusCode: number, ...rest: unknown[]): this {
      const headersAt = typeof rest[0] === 'string' ? 1 : 0; // a reason phrase: HTTP/2 has none
      const headers = rest[headersAt] as OutgoingHttpHeaders | OutgoingHttpHeader[] | undefined;
      let filtered: unknown = headers;
      if (Array.isArray(headers)) {
        if (headers.length && Array.isArray(headers[0])) {
          filtered = (headers as unknown as [string, OutgoingHttpHeader][]).filter(([name]) => allowed(name));
        } else {
          const flat: OutgoingHttpHeader[] = [];
          for (let i = 0; i < headers.length; i += 2) if (allowed(String(headers[i]))) flat.push(headers[i], headers[i + 1]);
          filtered = flat;
        }
      } else if (headers && typeof headers === 'object') {
        filtered = Object.fromEntries(Object.entries(headers).filter(([name, value]) => allowed(name) && value !== undefined));
      }
      return (super.writeHead as (status: number, headers?: unknown) => this)(statusCode, filtered);
    }
  }
  return { http2, Http2Request, Http2Response };
}

let loaded: ReturnType<typeof defineClasses> | undefined;

/** node:http2 and the request and response classes over it, loaded on first use (an HTTPS listener). */
export function http2Classes(): ReturnType<typeof defineClasses> {
  return (loaded ??= defineClasses(require('node:http2') as typeof Http2));
}

/**
 * True for a request that came over HTTP/2 (its checks are HTTP/1.1's, less the framing
 * ones). Told by the object Node made, never by the version it reports: an HTTP/1.x
 * request line may claim "HTTP/2.0", and must get its 505.
 */
export function isHttp2Request(req: object): boolean {
  // Without node:http2 loaded, no listener speaks HTTP/2.
  return loaded !== undefined && req instanceof loaded.http2.Http2ServerRequest;
}
