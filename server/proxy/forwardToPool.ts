// Hands one HTTP request to a Python pool over the framed channel and writes the
// worker's answer back. The proxy has already parsed HTTP; the worker gets the head as
// JSON (ready for WSGI/ASGI keys) and the body as frames, so Python never parses HTTP.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHead } from '../protocol';
import type { Pool } from '../pool/pool';
import type { Job, WorkerProcess } from '../pool/worker';
import { downstreamResponseHeaders, upstreamRequestHeaders, type ForwardingFacts } from './headers';
import { sendErrorPage } from './errorPages';

export interface ForwardOutcome {
  /** Called once, when the response is complete or abandoned. */
  onDone(facts: { status: number; bytes: number; upstreamMs?: number; worker?: string }): void;
}

export function forwardToPool(
  req: IncomingMessage,
  res: ServerResponse,
  pool: Pool,
  facts: ForwardingFacts & { serverName: string },
  maxBodySize: number,
  outcome: ForwardOutcome,
): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  // A declared length over the limit was refused by the caller; a chunked body is counted as it streams.
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const declared = Number(req.headers['content-length'] ?? 0);
  const head: RequestHead = {
    method: req.method ?? 'GET',
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers: upstreamRequestHeaders(req, facts),
    scheme: facts.scheme,
    serverName: facts.serverName,
    serverPort: facts.port,
    remoteAddr: facts.remoteAddr,
    remotePort: req.socket.remotePort ?? 0,
    httpVersion: req.httpVersion,
    hasBody: chunked || declared > 0,
  };

  let worker: WorkerProcess | undefined;
  let status = 0;
  let bytes = 0;
  let assignedAt = 0;
  let settled = false;
  let paused = false;
  const settle = (finalStatus: number) => {
    if (settled) return;
    settled = true;
    outcome.onDone({
      status: finalStatus,
      bytes,
      upstreamMs: assignedAt ? performance.now() - assignedAt : undefined,
      worker: worker ? `${pool.name}:${worker.id}` : undefined,
    });
  };

  const job: Job = {
    head,
    headBytes: Buffer.from(JSON.stringify(head)),
    requestId: 0,
    enqueuedAt: 0,
    startedAt: 0,
    responseStarted: false,
    revoking: false,
    takenBack: false,
    done: false,
    onAssigned(w, requestId) {
      worker = w;
      assignedAt = performance.now();
      if (head.hasBody) streamBody(req, w, requestId, maxBodySize, () => {
        pool.cancel(job, w);
        res.setHeader('Connection', 'close');
        sendErrorPage(res, 413, `The body is larger than the limit of ${maxBodySize} bytes.`);
        settle(413);
      });
    },
    onStart(code, headers) {
      status = code;
      res.writeHead(code, downstreamResponseHeaders(headers));
    },
    onChunk(data) {
      bytes += data.length;
      // A slow client: ask the worker to hold its next chunks until this one is sent.
      if (!res.write(data) && !paused && worker) {
        paused = true;
        const w = worker;
        w.pause(job.requestId);
        res.once('drain', () => {
          paused = false;
          w.resume(job.requestId);
        });
      }
    },
    onEnd(failed) {
      if (failed) {
        // The app failed after its headers went out: cut the response so the client sees it is incomplete.
        res.destroy();
        settle(status || 502);
        return;
      }
      res.end();
      settle(status);
    },
    onFail(code, reason) {
      sendErrorPage(res, code, reason, code === 503 ? { 'Retry-After': '2' } : {});
      settle(code);
    },
  };

  res.on('close', () => {
    if (!res.writableFinished && !job.done) {
      pool.cancel(job, worker);
      settle(499); // NGINX's code for a client that closed the connection first
    }
  });
  pool.submit(job);
}

function streamBody(req: IncomingMessage, w: WorkerProcess, requestId: number, limit: number, onTooLarge: () => void): void {
  let received = 0;
  let stopped = false;
  req.on('data', (chunk: Buffer) => {
    if (stopped) return;
    received += chunk.length;
    if (limit > 0 && received > limit) {
      stopped = true;
      req.pause();
      onTooLarge();
      return;
    }
    w.sendBody(requestId, chunk);
    if (w.congested) {
      req.pause();
      w.onDrain(() => req.resume());
    }
  });
  req.on('end', () => {
    if (!stopped) w.endBody(requestId);
  });
  req.on('error', () => {
    if (!stopped) w.abort(requestId);
  });
}
