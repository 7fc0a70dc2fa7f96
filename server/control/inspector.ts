// The request inspector (ngrok's local inspector is the model): a bounded ring of the
// last requests the proxy answered, in memory only and never on disk, with their heads,
// bounded copies of their bodies, where their time went, and replay.
//
//  - It is on in development only (the proxy listens on loopback and NODE_ENV is not
//    "production"): a server exposed to a network must not keep other people's requests.
//  - It never changes a request. Bodies are copied where they pass (the listener's own
//    request and response classes, proxy/tappedMessages.ts, hand each chunk to `tap`'s
//    capture), so whoever reads the body, however it reads it, sees what it saw before.
//  - Credentials (Authorization, Proxy-Authorization, Cookie, Set-Cookie) leave the
//    server masked unless a client asks to reveal them; a replay uses the kept values.
//  - Replay sends the request again to the server's own listener over loopback HTTP, so
//    it goes through routing, limits and a worker like any other request.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { ServeStackError } from '../errors';
import { type MessageTap, TappedRequest, TappedResponse } from '../proxy/tappedMessages';
import { wallTimeOf } from '../wallClock';
import type { CapturedBody, InspectedHeader, InspectedRequest, LogLine, ReplayEdit, RequestSummary } from '../protocol';

/** What the proxy reports once per request (server/proxy/server.ts `RequestRecord`). */
export interface InspectorRecord {
  route: string;
  pool?: string;
  status: number;
  ms: number;
  upstreamMs?: number;
  /** "pool:id" of the worker that answered. */
  worker?: string;
  req: IncomingMessage;
  res: ServerResponse;
}

export interface InspectorOptions {
  /** Requests kept (oldest dropped first). */
  capacity?: number;
  /** Bytes kept of each body. */
  maxBodyBytes?: number;
  /** The proxy's own listener, for replays. */
  listener: () => { host: string; port: number; secure?: boolean } | undefined;
  /** Recent log lines, oldest first (the logger's ring). */
  recentLogs: (lines: number) => LogLine[];
}

export const DEFAULT_CAPACITY = 200;
/**
 * How long whole requests (headers as sent, bodies) are kept after a dashboard or
 * `servestack requests` last asked; the dashboard renews it every minute while open.
 * Unwatched, the ring keeps summaries, request heads and body sizes only: copying every
 * body cost the front about 15 % of its time on small answers (measured, bench --cpu-prof).
 */
export const WATCH_LEASE_MS = 3 * 60_000;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** At most this many new requests per `requests` event (the rest are in the ring, listed by the `requests` command). */
export const MAX_SUMMARIES_PER_EVENT = 200;
export const MASKED_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
export const MASK = '••••••••';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);
const REPLAY_TIMEOUT_MS = 60_000;

/** Development: loopback, and not NODE_ENV=production; SERVESTACK_INSPECTOR=0/1 overrides. */
export function inspectorWanted(listenHost: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.SERVESTACK_INSPECTOR === '0') return false;
  if (env.SERVESTACK_INSPECTOR === '1') return true;
  if (env.NODE_ENV === 'production') return false;
  return listenHost === 'localhost' || listenHost === '::1' || /^127\./.test(listenHost);
}

const NO_BYTES = Buffer.alloc(0);

/** A chunk's length in bytes, without making a buffer of a string to count it. */
function chunkBytes(chunk: unknown, encoding?: unknown): number {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return 0;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? chunk.byteLength : Buffer.byteLength(String(chunk));
}

/** The first `limit` bytes of a body (made only while someone watches). */
class BodyCopy {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  constructor(private readonly limit: number) {}

  add(chunk: unknown, encoding?: unknown): void {
    if (chunk === undefined || chunk === null || typeof chunk === 'function' || this.kept >= this.limit) return;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : chunk instanceof Uint8Array
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    const part = buf.length <= this.limit - this.kept ? buf : buf.subarray(0, this.limit - this.kept);
    this.chunks.push(Buffer.from(part)); // a copy: the owner may reuse its buffer
    this.kept += part.length;
  }

  bytes(): Buffer {
    return this.kept ? Buffer.concat(this.chunks, this.kept) : NO_BYTES;
  }
}

/** One request's tap: body sizes always, copies of the bodies only while watched (one object per request otherwise). */
class Capture implements MessageTap {
  headAtPerf: number | undefined = undefined;
  requestSize = 0;
  responseSize = 0;
  private readonly requestCopy: BodyCopy | undefined;
  private readonly responseCopy: BodyCopy | undefined;

  constructor(
    /** performance.now() as the request arrived (the proxy's own reading: no clock call per request here). */
    readonly arrivedPerf: number,
    maxBodyBytes: number,
    readonly replayOf: number | undefined,
  ) {
    this.requestCopy = maxBodyBytes > 0 ? new BodyCopy(maxBodyBytes) : undefined;
    this.responseCopy = maxBodyBytes > 0 ? new BodyCopy(maxBodyBytes) : undefined;
  }

  requestData(chunk: Buffer): void {
    this.requestSize += chunkBytes(chunk);
    this.requestCopy?.add(chunk);
  }

  responseHead(): void {
    this.headAtPerf ??= performance.now();
  }

  responseData(chunk: unknown, encoding: unknown): void {
    this.responseSize += chunkBytes(chunk, encoding);
    this.responseCopy?.add(chunk, encoding);
  }

  requestBytes(): Buffer {
    return this.requestCopy ? this.requestCopy.bytes() : NO_BYTES;
  }

  responseBytes(): Buffer {
    return this.responseCopy ? this.responseCopy.bytes() : NO_BYTES;
  }
}

/** One finished request, as flat as it can be: the summary and timing objects are made when someone asks. It keeps no reference to the request or response objects. */
class Entry {
  readonly time: number;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** Total, upstream and app time (ms, unrounded); NaN when not known. */
  readonly totalMs: number;
  readonly upstreamMs: number;
  readonly appMs: number;
  readonly route: string;
  readonly pool: string | undefined;
  readonly workerId: number | undefined;
  readonly replayOf: number | undefined;
  readonly httpVersion: string;
  readonly remoteAddr: string;
  readonly rawHeaders: string[];
  /** The response head as it went out (headers given to writeHead are invisible to getHeaders). */
  readonly responseHead: string;
  readonly requestBody: Buffer;
  readonly requestBodySize: number;
  readonly responseBody: Buffer;
  readonly responseBodySize: number;

  constructor(readonly id: number, r: InspectorRecord, capture: Capture) {
    const workerId = r.worker ? Number(r.worker.slice(r.worker.lastIndexOf(':') + 1)) : NaN;
    this.time = wallTimeOf(capture.arrivedPerf);
    this.method = r.req.method ?? 'GET';
    this.url = r.req.url ?? '/';
    this.status = r.status;
    this.totalMs = r.ms;
    this.upstreamMs = r.upstreamMs ?? NaN;
    this.appMs = capture.headAtPerf !== undefined ? capture.headAtPerf - capture.arrivedPerf : NaN;
    this.route = r.route;
    this.pool = r.pool;
    this.workerId = Number.isInteger(workerId) ? workerId : undefined;
    this.replayOf = capture.replayOf;
    this.httpVersion = r.req.httpVersion;
    this.remoteAddr = r.req.socket.remoteAddress ?? '';
    this.rawHeaders = r.req.rawHeaders; // the request is over: nothing changes it now
    this.responseHead = (r.res as unknown as { _header?: string | null })._header ?? ''; // parsed when inspected
    this.requestBody = capture.requestBytes();
    this.requestBodySize = capture.requestSize;
    this.responseBody = capture.responseBytes();
    this.responseBodySize = capture.responseSize;
  }

  get endedAt(): number {
    return this.time + this.totalMs;
  }

  summary(): RequestSummary {
    const summary: RequestSummary = { id: this.id, time: this.time, method: this.method, url: this.url, status: this.status, ms: round(this.totalMs), route: this.route };
    if (this.pool !== undefined) summary.pool = this.pool;
    if (this.workerId !== undefined) summary.workerId = this.workerId;
    if (this.replayOf !== undefined) summary.replayOf = this.replayOf;
    return summary;
  }

  timing(): InspectedRequest['timing'] {
    const timing: InspectedRequest['timing'] = { totalMs: round(this.totalMs) };
    if (!Number.isNaN(this.upstreamMs)) {
      const queueMs = Math.max(0, this.totalMs - this.upstreamMs);
      timing.queueMs = round(queueMs);
      timing.workerMs = round(this.upstreamMs);
      if (!Number.isNaN(this.appMs)) timing.appMs = round(Math.max(0, this.appMs - queueMs));
    }
    return timing;
  }
}

export class RequestInspector {
  private readonly capacity: number;
  private readonly maxBodyBytes: number;
  /** The last `capacity` requests, request `id` at `id % capacity` (ids are handed out in order): no Map, no shift. */
  private readonly ring: (Entry | undefined)[];
  private readonly captures = new WeakMap<IncomingMessage, Capture>();
  /** Local ports of replays in flight → the id they replay. */
  private readonly replayPorts = new Map<number, number>();
  /** Replays in flight (by local port) → the id of their own record, once recorded. */
  private readonly replayRecords = new Map<number, number>();
  /** The first id the next `requests` event reports. */
  private freshFrom = 1;
  private nextId = 1;
  private watchedUntil = 0;

  constructor(private readonly options: InspectorOptions) {
    this.capacity = options.capacity ?? DEFAULT_CAPACITY;
    this.ring = new Array<Entry | undefined>(this.capacity).fill(undefined);
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  /**
   * As a request arrives, before anything reads it: copy its bodies as they pass. Only a
   * listener made with `tappedMessageClasses` can be tapped; other requests are still
   * recorded, without bodies.
   */
  tap(req: IncomingMessage, res: ServerResponse, arrivedPerf = performance.now()): void {
    // The replay lookup reads the socket's peer port: only while a replay is in flight.
    const replayOf = this.replayPorts.size > 0 && req.socket.remotePort !== undefined ? this.replayPorts.get(req.socket.remotePort) : undefined;
    const capture = new Capture(arrivedPerf, this.watched(wallTimeOf(arrivedPerf)) ? this.maxBodyBytes : 0, replayOf);
    // Kept on the request where it can be: a WeakMap entry per request is GC work (ephemerons).
    if (req instanceof TappedRequest) req.tap = capture;
    else this.captures.set(req, capture);
    if (res instanceof TappedResponse) res.tap = capture;
  }

  /** Someone looks at the requests (the dashboard, `servestack requests`): keep them whole for WATCH_LEASE_MS. */
  watch(now = Date.now()): void {
    this.watchedUntil = now + WATCH_LEASE_MS;
  }

  watched(now = Date.now()): boolean {
    return now < this.watchedUntil;
  }

  /** Once per request, when it is done (the proxy's recorder). */
  record(r: InspectorRecord): void {
    const tapped = r.req instanceof TappedRequest;
    const capture = tapped ? (r.req as TappedRequest).tap : this.captures.get(r.req);
    if (!(capture instanceof Capture)) return;
    if (!tapped) this.captures.delete(r.req);
    const id = this.nextId++;
    this.ring[id % this.capacity] = new Entry(id, r, capture);
    const port = r.req.socket.remotePort;
    if (capture.replayOf !== undefined && port !== undefined && this.replayPorts.has(port)) this.replayRecords.set(port, id);
  }

  /** The requests recorded since the last call and still kept, at most MAX_SUMMARIES_PER_EVENT (for the once-a-second `requests` event). */
  takeFresh(): RequestSummary[] {
    const from = Math.max(this.freshFrom, this.nextId - Math.min(MAX_SUMMARIES_PER_EVENT, this.capacity));
    this.freshFrom = this.nextId;
    return this.summaries(from);
  }

  list(limit = this.capacity): RequestSummary[] {
    return this.summaries(Math.max(1, this.nextId - Math.min(limit, this.capacity)));
  }

  private summaries(from: number): RequestSummary[] {
    const out: RequestSummary[] = [];
    for (let id = Math.max(1, from); id < this.nextId; id++) {
      const e = this.ring[id % this.capacity];
      if (e && e.id === id) out.push(e.summary());
    }
    return out;
  }

  inspect(id: number, reveal = false): InspectedRequest {
    const e = this.entry(id);
    const lines = this.options.recentLogs(2000).filter((line) => this.belongsTo(line, e));
    return {
      ...e.summary(),
      httpVersion: e.httpVersion,
      remoteAddr: e.remoteAddr,
      requestHeaders: headerList(pairs(e.rawHeaders), reveal),
      responseHeaders: headerList(parseResponseHead(e.responseHead), reveal),
      requestBody: captured(e.requestBody, e.requestBodySize),
      responseBody: captured(e.responseBody, e.responseBodySize),
      timing: e.timing(),
      logs: lines,
    };
  }

  /** Send request `id` again (as it was, or changed by `edit`) to the proxy's own listener. */
  async replay(id: number, edit: ReplayEdit = {}): Promise<{ status: number; request?: number }> {
    const e = this.entry(id);
    if (edit.body === undefined && e.requestBodySize > e.requestBody.length) {
      throw new ServeStackError('CONTROL_BAD_COMMAND', `request ${id} had a body of ${e.requestBodySize} bytes; only the first ${e.requestBody.length} were kept, so it cannot be replayed as it was`, {
        hint: 'replay it with an edited body',
      });
    }
    const target = this.options.listener();
    if (!target) throw new ServeStackError('CONTROL_COMMAND_FAILED', 'the proxy does not listen yet');
    const original = pairs(e.rawHeaders);
    const headers: [string, string][] = edit.headers
      ? edit.headers.map(([name, value]): [string, string] => {
          if (value !== MASK) return [name, value];
          // A masked value sent back unchanged means "as it was".
          const kept = original.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
          return [name, kept.shift() ?? ''];
        })
      : original;
    const body = edit.body !== undefined ? Buffer.from(edit.body, 'utf8') : e.requestBody;
    const method = (edit.method ?? e.method).toUpperCase();
    const url = edit.url ?? e.url;
    if (!/^[A-Z]+$/.test(method)) throw new ServeStackError('CONTROL_BAD_COMMAND', `"${method}" is not an HTTP method`);
    if (!url.startsWith('/')) throw new ServeStackError('CONTROL_BAD_COMMAND', `the request target must start with "/", not "${url}"`);
    const raw: string[] = [];
    for (const [name, value] of headers) {
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      raw.push(name, value);
    }
    if (body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method)) raw.push('Content-Length', String(body.length));
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) raw.push('Host', `${hostForUrl(target.host)}:${target.port}`);
    return new Promise((resolve, reject) => {
      let localPort: number | undefined;
      const done = () => {
        if (localPort === undefined) return;
        this.replayPorts.delete(localPort);
        this.replayRecords.delete(localPort);
      };
      // Over HTTPS the replay goes to this very server on loopback: its certificate is not what is being inspected.
      const transport = target.secure ? https : http;
      const tlsOptions = target.secure ? { rejectUnauthorized: false } : {};
      const req = transport.request({ host: connectHost(target.host), port: target.port, method, path: url, headers: raw, setHost: false, agent: false, timeout: REPLAY_TIMEOUT_MS, ...tlsOptions }, (res) => {
        res.resume();
        res.on('end', () => {
          const recorded = localPort !== undefined ? this.replayRecords.get(localPort) : undefined;
          done();
          resolve({ status: res.statusCode ?? 0, ...(recorded !== undefined ? { request: recorded } : {}) });
        });
        res.on('error', (err) => { done(); reject(err); });
      });
      req.on('socket', (socket) => {
        socket.once('connect', () => {
          localPort = socket.localPort;
          if (localPort !== undefined) this.replayPorts.set(localPort, id);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${REPLAY_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err) => {
        done();
        reject(new ServeStackError('CONTROL_COMMAND_FAILED', `the replay of request ${id} failed: ${err.message}`));
      });
      req.end(body);
    });
  }

  private entry(id: number): Entry {
    const e = Number.isInteger(id) && id > 0 ? this.ring[id % this.capacity] : undefined;
    if (!e || e.id !== id) {
      throw new ServeStackError('CONTROL_UNKNOWN_REQUEST', `request ${id} is not in the inspector (it keeps the last ${this.capacity})`, {
        hint: 'pick a request from the recent requests',
      });
    }
    return e;
  }

  /** Its worker's lines while it ran (a little slack for the access line, logged as it ends). */
  private belongsTo(line: LogLine, e: Entry): boolean {
    if (line.time < e.time || line.time > e.endedAt + 50) return false;
    if (line.source === 'access') return line.text.includes(` "${e.method} ${e.url} `) && line.text.includes(`" ${e.status} `);
    return e.workerId !== undefined && line.workerId === e.workerId;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function headerList(list: [string, string][], reveal: boolean): InspectedHeader[] {
  return list.map(([name, value]) => (!reveal && MASKED_HEADERS.has(name.toLowerCase()) ? { name, value: MASK, masked: true } : { name, value }));
}

function parseResponseHead(head: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return out;
}

function captured(bytes: Buffer, size: number): CapturedBody {
  const body: CapturedBody = { size, kept: bytes.length, truncated: size > bytes.length };
  if (bytes.length === 0) return { ...body, text: '' };
  try {
    // A cut may split a character: decode only whole ones when truncated.
    return { ...body, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: body.truncated }) };
  } catch {
    return { ...body, base64: bytes.toString('base64') };
  }
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** A wildcard listener is reached on loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}
