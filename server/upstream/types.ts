// The one seam between the proxy and everything behind it: Python pools, command pools
// and URL upstreams all take a request head and a body source, answer through a sink,
// and can be cancelled. The proxy owns HTTP (parsing, limits, buffering both ways,
// status pages, retries); an upstream owns its processes or connections and reports what
// went wrong as data, never as an HTTP status.
import type { Socket } from 'node:net';

export interface UpstreamRequest {
  method: string;
  /** The request target as the client sent it (origin form: path and query). */
  url: string;
  /** `url` without the query, and the query without "?". */
  path: string;
  query: string;
  /** Lower-case names, hop-by-hop headers dropped, forwarding headers set by the proxy. */
  headers: [string, string][];
  httpVersion: string;
  scheme: 'http' | 'https';
  serverName: string;
  serverPort: number;
  remoteAddr: string;
  remotePort: number;
  /** The matched route's prefix: a URL target with a path replaces it (NGINX's proxy_pass rule). */
  routePrefix: string;
  /** Where the app is mounted behind a front (WSGI SCRIPT_NAME, ASGI root_path); "" or absent: at "/". */
  scriptName?: string;
  /** undefined: the request has no body. */
  body: BodySource | undefined;
  /** The protocol an Upgrade request asks for ("websocket"); upgrade requests only. */
  upgrade?: string;
}

/**
 * Why an upstream could not answer (or finish answering). The proxy picks the status:
 * UNAVAILABLE and OVERLOADED → 503, LOST and UNREACHABLE → 502, TIMEOUT → 504; after the
 * response has started, any failure cuts the connection so the client can tell.
 */
export type UpstreamFailureCode =
  | 'UNAVAILABLE' // nothing can run it: the app cannot load, the pool is stopping or backing off
  | 'OVERLOADED' // every worker is busy and the queue is full
  | 'LOST' // the worker or connection went away before any byte of an answer
  | 'UNREACHABLE' // the upstream could not be connected to
  | 'TIMEOUT' // the upstream did not answer within its time
  | 'BROKEN'; // the answer started and then failed

export interface UpstreamFailure {
  code: UpstreamFailureCode;
  /** One line saying what happened, with the fix when known. */
  message: string;
  file?: string;
  line?: number;
}

/** How the upstream answers. Each method is called in this order: start, data…, then end or fail; or fail alone. */
export interface ResponseSink {
  /** Which process took the request, for the access log ("web:3"). */
  assigned(who: string): void;
  start(status: number, headers: [string, string][]): void;
  data(chunk: Buffer): void;
  end(): void;
  fail(failure: UpstreamFailure): void;
  /**
   * The whole answer at once: what start, data and end would say, when all of it arrived
   * together (a small answer from a worker, in one read). Optional: an upstream calls it
   * only on a sink that has it, else start/data/end; a wrapping sink that must see the
   * body (the dev loop's injection) leaves it out.
   */
  complete?(status: number, headers: [string, string][], body: Buffer | undefined): void;
}

/** The proxy's handle on one submitted request. */
export interface UpstreamCall {
  /** The client went away: stop, and free whatever holds the request. */
  cancel(): void;
  /** The proxy's buffers for this response are full: hold the next chunks. Always followed by resume() or cancel(). */
  pause(): void;
  resume(): void;
}

export interface Upstream {
  readonly name: string;
  /**
   * Whether a route to this upstream reads the whole request body before submitting, when
   * the route does not say: true for sync (WSGI) workers, which a slow upload would hold.
   */
  readonly buffersRequestsByDefault: boolean;
  /** true: the upstream already tries another of its members before it reports a failure, so the proxy does not retry (balanced.ts). */
  readonly failsOver?: boolean;
  submit(request: UpstreamRequest, sink: ResponseSink): UpstreamCall;
  /**
   * WebSocket (or other Upgrade) pass-through; absent when the upstream cannot take one.
   * `done`, when the upstream calls it, gets the outcome once the connection has ended
   * (the access log's line).
   */
  upgrade?(request: UpstreamRequest, socket: Socket, head: Buffer, done?: (outcome: UpgradeOutcome) => void): void;
}

/** How an upgrade ended: 101 for a WebSocket that opened (then `bytes` went to the client after the handshake), else the status it was refused with. */
export interface UpgradeOutcome {
  status: number;
  bytes: number;
  /** Which process took it ("web:3"). */
  worker?: string;
}

/** A request body: read whole by the proxy first (buffered), or streamed from the client. */
export interface BodySource {
  /** Bytes, when known before reading (a buffered body). */
  readonly length: number | undefined;
  /** A buffered body can be read again (a retry, a request taken back from a worker). */
  readonly replayable: boolean;
  /** Reads from the start. A streamed body can be opened once. */
  open(handlers: BodyHandlers): BodyReader;
}

export interface BodyHandlers {
  chunk(data: Buffer): void;
  end(): void;
  /** The body cannot be completed (the client went away, or it is over the limit). */
  error(error: Error): void;
}

export interface BodyReader {
  pause(): void;
  resume(): void;
  /** Stop reading; no handler is called after this. */
  close(): void;
}
