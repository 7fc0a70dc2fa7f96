// The soak's clients and what they count. Each kind runs in a few loops until the end
// of the run; every answer is checked whole (status, framing, length, checksum), so a
// body cut short is told apart from one that arrived:
//   ok         the whole expected answer
//   failed     status ≥ 500, or a connection error before any byte of the answer
//   truncated  the answer started but the client could tell it was cut: fewer bytes
//              than its Content-Length, or a chunked body without its last chunk
//   silent     the answer ended cleanly by HTTP's framing but is short or wrong (bad
//              checksum, wrong length): a cut the client cannot tell from a whole answer
//   abandoned  a slow client that went away as planned (slow readers, aborted uploads)
//   other      an unexpected status below 500 (e.g. 413, 429, 404)
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { sleep } from './procs.mjs';

export const DOWNLOAD_BYTES = 8 * 1024 * 1024;
/** The bytes /download serves: SHAKE-256("servestack-soak"), as the app computes them. */
export const DOWNLOAD = createHash('shake256', { outputLength: DOWNLOAD_BYTES }).update('servestack-soak').digest();
const DOWNLOAD_SHA256 = createHash('sha256').update(DOWNLOAD).digest('hex');
export const STREAM_PARTS = 20;
const STREAM_BODY = Array.from({ length: STREAM_PARTS }, (_, i) => `part ${i + 1}/${STREAM_PARTS}\n`).join('');
const HELLO = 'Hello, World!';

export const KINDS = ['normal', 'slow', 'download', 'upload', 'stream', 'slowReader', 'slowUpload'];
export const GET_KINDS = ['normal', 'slow', 'download', 'stream'];
const RESULTS = ['ok', 'failed', 'truncated', 'silent', 'abandoned', 'other'];
const MAX_EVENTS = 5000;

/** Counts per client kind, and the time of every answer that was not ok (for the faults' windows). */
export class Tally {
  constructor() {
    this.t0 = Date.now();
    this.kinds = Object.fromEntries(KINDS.map((k) => [k, { requests: 0, ...Object.fromEntries(RESULTS.map((r) => [r, 0])), statuses: {}, errors: {}, latenciesMs: [], keepAliveRetries: 0, buffered: 0 }]));
    /** @type {{ t: number, kind: string, result: string, why: string }[]} */
    this.events = [];
    this.eventsDropped = 0;
    /** ok GETs (normal, slow, download, stream) per second of the run: how much got through around each fault */
    this.okGetsPerSecond = [];
  }

  record(kind, result, { status, why, ms } = {}) {
    const k = this.kinds[kind];
    k.requests += 1;
    k[result] += 1;
    if (status !== undefined) k.statuses[status] = (k.statuses[status] ?? 0) + 1;
    if (result === 'ok' && ms !== undefined && (kind === 'normal' || kind === 'slow')) k.latenciesMs.push(ms);
    if (result === 'ok' && GET_KINDS.includes(kind)) {
      const second = Math.floor((Date.now() - this.t0) / 1000);
      this.okGetsPerSecond[second] = (this.okGetsPerSecond[second] ?? 0) + 1;
    }
    if (result !== 'ok' && result !== 'abandoned') {
      if (why) k.errors[why] = (k.errors[why] ?? 0) + 1;
      if (this.events.length < MAX_EVENTS) this.events.push({ t: (Date.now() - this.t0) / 1000, kind, result, why: why ?? `status ${status}` });
      else this.eventsDropped += 1;
    }
  }
}

const errorName = (e) => e?.code ?? e?.message ?? String(e);

/**
 * One HTTP request. Resolves (never rejects) with what happened: the status, whether the
 * body ended by its framing (`complete`), the bytes, and the error, if any, with whether it
 * came before the answer started.
 */
function httpRequest(base, { method = 'GET', path, headers = {}, body, agent = false, timeoutMs = 30000, onData }) {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let res;
    let length = 0;
    const chunkTimes = [];
    const done = (extra) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status: res?.statusCode, headers: res?.headers, length, ms: performance.now() - started, chunkTimes, reused: req.reusedSocket, ...extra });
    };
    const req = http.request(`${base}${path}`, { method, headers, agent });
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), timeoutMs);
    req.on('response', (r) => {
      res = r;
      r.on('data', (c) => {
        length += c.length;
        chunkTimes.push(performance.now() - started);
        onData?.(c);
      });
      r.on('end', () => done({ complete: r.complete }));
      r.on('error', (e) => done({ complete: false, error: errorName(e), started: true }));
      r.on('close', () => done({ complete: r.complete, error: r.complete ? undefined : 'closed', started: true }));
    });
    req.on('error', (e) => done({ complete: false, error: errorName(e), started: res !== undefined }));
    req.end(body);
  });
}

/**
 * A GET; a connection error on a reused keep-alive connection before any answer is retried
 * once on a new one, as browsers and Node's docs do (the server may close an idle
 * connection just as a request goes out on it). Those retries are counted apart.
 */
async function idempotentGet(tally, kind, base, opts) {
  let r = await httpRequest(base, opts);
  if (r.error && !r.started && r.reused) {
    tally.kinds[kind].keepAliveRetries += 1;
    r = await httpRequest(base, { ...opts, agent: false });
  }
  return r;
}

/** Sorts one answer into ok / failed / truncated / silent / other, given whether its body is right. */
function classify(r, bodyRight, expectedStatus = 200) {
  if (r.status === undefined) return { result: 'failed', why: `${r.error ?? 'no answer'}${r.reused ? ' (reused connection)' : ''}` };
  if (r.status >= 500) return { result: 'failed', why: `status ${r.status}` };
  if (r.status !== expectedStatus) return { result: 'other', why: `status ${r.status}` };
  if (!r.complete) return { result: 'truncated', why: `cut after ${r.length} bytes (${r.error ?? 'incomplete'})` };
  if (!bodyRight) return { result: 'silent', why: `clean end, wrong body (${r.length} bytes)` };
  return { result: 'ok' };
}

function recordAnswer(tally, kind, r, bodyRight, expectedStatus) {
  const c = classify(r, bodyRight, expectedStatus);
  tally.record(kind, c.result, { status: r.status, why: c.why, ms: r.ms });
  return c.result;
}

// ── the client kinds ───────────────────────────────────────────────────────────

export function makeClients(base, { expectedJson, timeoutS }) {
  const normalAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const downloadAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const { port } = new URL(base);
  let n = 0;

  return {
    agents: [normalAgent, downloadAgent],

    async normal(tally) {
      const json = n++ % 2 === 0;
      const chunks = [];
      const r = await idempotentGet(tally, 'normal', base, { path: json ? '/json' : '/hello', agent: normalAgent, timeoutMs: 30000, onData: (c) => chunks.push(c) });
      recordAnswer(tally, 'normal', r, Buffer.concat(chunks).toString() === (json ? expectedJson : HELLO));
    },

    async slow(tally) {
      const chunks = [];
      const r = await idempotentGet(tally, 'slow', base, { path: '/slow', agent: normalAgent, timeoutMs: 30000, onData: (c) => chunks.push(c) });
      recordAnswer(tally, 'slow', r, Buffer.concat(chunks).toString() === 'Hello, slowly!');
    },

    /** 8 MiB read as fast as the client can, every byte checked; every other one without Content-Length. */
    async download(tally) {
      const chunked = n++ % 2 === 0;
      const hash = createHash('sha256');
      const r = await idempotentGet(tally, 'download', base, { path: chunked ? '/download?framing=chunked' : '/download', agent: downloadAgent, timeoutMs: 60000, onData: (c) => hash.update(c) });
      recordAnswer(tally, 'download', r, r.length === DOWNLOAD_BYTES && hash.digest('hex') === DOWNLOAD_SHA256);
    },

    async upload(tally) {
      const body = randomBytes(64 * 1024);
      const sha = createHash('sha256').update(body).digest('hex');
      const chunks = [];
      const r = await httpRequest(base, { method: 'POST', path: '/upload', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }, body, timeoutMs: 30000, onData: (c) => chunks.push(c) });
      recordAnswer(tally, 'upload', r, answerMatches(chunks, body.length, sha));
    },

    /** The streamed answer must arrive whole, in parts; one that arrived all at the end counts as buffered (still ok). */
    async stream(tally) {
      const chunks = [];
      const r = await idempotentGet(tally, 'stream', base, { path: '/stream', agent: normalAgent, timeoutMs: 30000, onData: (c) => chunks.push(c) });
      const result = recordAnswer(tally, 'stream', r, Buffer.concat(chunks).toString() === STREAM_BODY);
      // The generator sleeps 19 × 50 ms: a first byte within the first half means it was not held back.
      if (result === 'ok' && r.chunkTimes.length > 0 && r.chunkTimes.at(-1) - r.chunkTimes[0] < 400) tally.kinds.stream.buffered += 1;
    },

    /**
     * A raw socket asks for the 8 MiB download and then either reads it at ~8 KB/s or never
     * reads at all, and goes away after `seconds`. What it read is checked against the bytes
     * the app serves. Cut by the server before it left: truncated (or failed with a 5xx).
     */
    slowReader(tally, { seconds, read }) {
      return new Promise((resolve) => {
        const sock = net.connect(Number(port), '127.0.0.1');
        let head = Buffer.alloc(0);
        let status;
        let contentLength;
        let bodyBytes = 0;
        let corrupt = false;
        let finished = false;
        const finish = (result, why) => {
          if (finished) return;
          finished = true;
          clearInterval(reader);
          clearTimeout(leave);
          sock.destroy();
          tally.record('slowReader', result, { status, why });
          resolve();
        };
        const take = (chunk) => {
          if (status === undefined) {
            head = Buffer.concat([head, chunk]);
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return;
            const text = head.subarray(0, end).toString('latin1');
            status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
            const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
            contentLength = cl ? Number(cl[1]) : undefined;
            chunk = head.subarray(end + 4);
          }
          if (status === 200 && chunk.length > 0 && !/\r\ntransfer-encoding:/i.test(head.toString('latin1'))) {
            if (!chunk.equals(DOWNLOAD.subarray(bodyBytes, bodyBytes + chunk.length))) corrupt = true;
          }
          bodyBytes += chunk.length;
        };
        sock.on('connect', () => sock.write(`GET /download HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
        let reader;
        if (read) {
          sock.on('readable', () => undefined); // keep the internal buffer filled up to its high-water mark
          reader = setInterval(() => {
            const want = Math.min(800, sock.readableLength);
            if (want > 0) take(sock.read(want));
          }, 100);
        } else {
          sock.pause();
        }
        const leave = setTimeout(() => {
          if (corrupt) return finish('silent', 'wrong bytes');
          if (status !== undefined && status >= 500) return finish('failed', `status ${status}`);
          finish('abandoned');
        }, seconds * 1000);
        const early = (error) => {
          // The server ended it before the client went away.
          if (status === undefined) return finish('failed', error ? errorName(error) : 'closed before an answer');
          if (status >= 500) return finish('failed', `status ${status}`);
          if (corrupt) return finish('silent', 'wrong bytes');
          if (contentLength !== undefined && bodyBytes + sock.readableLength >= contentLength) return finish('ok');
          finish('truncated', `closed by the server after ${bodyBytes} of ${contentLength ?? '?'} bytes`);
        };
        sock.on('error', early);
        sock.on('end', () => early());
        sock.on('close', () => early());
      });
    },

    /** A 4 KiB POST whose first bytes come at 4 bytes a second for `seconds`; then the rest, or an abort. */
    slowUpload(tally, { seconds, abort }) {
      return new Promise((resolve) => {
        const body = randomBytes(4096);
        const sha = createHash('sha256').update(body).digest('hex');
        const req = http.request(`${base}/upload`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } });
        let sent = 0;
        let finished = false;
        const chunks = [];
        const finish = (result, opts) => {
          if (finished) return;
          finished = true;
          clearInterval(drip);
          clearTimeout(stopDrip);
          clearTimeout(deadline);
          req.destroy();
          tally.record('slowUpload', result, opts);
          resolve();
        };
        req.flushHeaders();
        const drip = setInterval(() => req.write(body.subarray(sent, ++sent)), 250);
        const stopDrip = setTimeout(() => {
          clearInterval(drip);
          if (abort) return finish('abandoned');
          req.end(body.subarray(sent));
        }, seconds * 1000);
        const deadline = setTimeout(() => finish('failed', { why: 'no answer within 30 s of the last byte' }), (seconds + 30) * 1000);
        req.on('response', (res) => {
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const early = sent < body.length && !req.writableEnded;
            const r = { status: res.statusCode, complete: res.complete, length: chunks.reduce((s, c) => s + c.length, 0) };
            const c = classify(r, !early && answerMatches(chunks, body.length, sha));
            finish(c.result, { status: res.statusCode, why: early && c.result === 'silent' ? 'answered before the body was sent' : c.why });
          });
          res.on('error', (e) => finish(res.statusCode >= 500 ? 'failed' : 'truncated', { status: res.statusCode, why: errorName(e) }));
        });
        req.on('error', (e) => finish('failed', { why: errorName(e) }));
      });
    },
  };
}

function answerMatches(chunks, length, sha) {
  try {
    const a = JSON.parse(Buffer.concat(chunks).toString());
    return a.length === length && a.sha256 === sha;
  } catch {
    return false;
  }
}

/**
 * The config probe: a 1.5 MiB upload, which a 1 MiB limit refuses (413) and a 2 MiB limit
 * takes (200). Tells whether an edit was applied, and that the server still answers.
 */
export async function probeBodyLimit(base, timeoutMs = 5000) {
  const body = randomBytes(1.5 * 1024 * 1024);
  const r = await httpRequest(base, { method: 'POST', path: '/upload', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }, body, timeoutMs });
  return r.status ?? r.error;
}

/** Runs FN in a loop until `until` (ms since epoch), pausing between rounds. */
export async function loop(until, fn, pauseMs) {
  while (Date.now() < until) {
    await fn();
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

export { httpRequest };
