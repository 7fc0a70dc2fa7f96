// Request bodies on their way to an upstream. A buffered body is read whole by the proxy
// before any worker is chosen (NGINX's proxy_request_buffering): in memory up to
// `bufferSize`, then in a temp file, under `maxBodySize`; a body over the limit or cut
// short never reaches an upstream. A streamed body is handed on as it arrives, for
// upstreams that read it as it comes (ASGI, command pools, URLs).
import type { IncomingMessage } from 'node:http';
import type { BodyHandlers, BodyReader, BodySource } from './types';
import type { TempFile, TempFiles } from './tempFiles';

/** How much of a temp file is read into memory at a time on the way out. */
const FILE_READ_BYTES = 64 * 1024;

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the request body is larger than the limit of ${limit} bytes`);
  }
}

export type BufferedBodyResult =
  | { ok: true; body: BufferedBody }
  | { ok: false; reason: 'too-large'; limit: number }
  | { ok: false; reason: 'truncated' };

export interface BufferOptions {
  /** Bytes; 0 = no limit. */
  maxBodySize: number;
  /** Bytes held in memory before the rest goes to a temp file. */
  bufferSize: number;
  tempFiles: TempFiles;
}

/** Reads the whole body of `req`. The caller answers 413 or drops the request when it is not ok. */
export function bufferRequestBody(req: IncomingMessage, options: BufferOptions): Promise<BufferedBodyResult> {
  return new Promise((resolve) => {
    const memory: Buffer[] = [];
    let inMemory = 0;
    let received = 0;
    let file: TempFile | undefined;
    let creating: Promise<void> | undefined;
    let settled = false;
    let ended = false;
    let memoryBound = options.bufferSize;
    const settle = (result: BufferedBodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      if (!result.ok) file?.close();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (options.maxBodySize > 0 && received > options.maxBodySize) {
        req.pause();
        return settle({ ok: false, reason: 'too-large', limit: options.maxBodySize });
      }
      if (!file && !creating && inMemory + chunk.length <= memoryBound) {
        memory.push(chunk);
        inMemory += chunk.length;
        return;
      }
      if (file) {
        file.append(chunk);
        // A disk slower than the client: hold the upload rather than pile it up in memory.
        if (file.unwritten >= memoryBound && !req.isPaused()) {
          req.pause();
          file.onWritten = () => {
            if (file && file.unwritten < memoryBound / 2 && !settled) req.resume();
          };
        }
        return;
      }
      // The first byte past memory: hold the stream while the file opens, so order is kept.
      req.pause();
      const first = chunk;
      creating = options.tempFiles.create().then(
        (created) => {
          if (settled) return created.close();
          file = created;
          file.append(first);
          creating = undefined;
          req.resume();
          if (ended) finish();
        },
        () => {
          // No temp file (disk full, no state folder): keep it in memory rather than fail the request.
          memory.push(first);
          inMemory += first.length;
          creating = undefined;
          memoryBound = Number.MAX_SAFE_INTEGER;
          req.resume();
          if (ended) finish();
        },
      );
    };
    const finish = () => {
      if (creating) return; // finishes when the file is open
      settle({ ok: true, body: new BufferedBody(memory, inMemory, file) });
    };
    req.on('data', onData);
    req.once('end', () => {
      ended = true;
      finish();
    });
    req.once('error', () => settle({ ok: false, reason: 'truncated' }));
    req.once('close', () => {
      if (!req.complete) settle({ ok: false, reason: 'truncated' });
    });
  });
}

/** A body read whole: memory first, then the temp file; it can be read again from the start. */
export class BufferedBody implements BodySource {
  readonly replayable = true;
  readonly length: number;
  private readers = 0;
  private released = false;

  constructor(private readonly memory: Buffer[], inMemory: number, private readonly file: TempFile | undefined) {
    this.length = inMemory + (file?.size ?? 0);
  }

  open(handlers: BodyHandlers): BodyReader {
    this.readers++;
    let paused = false;
    let closed = false;
    let index = 0; // next memory chunk
    let filePos = 0;
    let reading = false;
    const pump = () => {
      while (!paused && !closed && index < this.memory.length) handlers.chunk(this.memory[index++]);
      if (paused || closed || reading) return;
      if (!this.file || filePos >= this.file.size) {
        closed = true;
        handlers.end();
        return;
      }
      reading = true;
      const length = Math.min(FILE_READ_BYTES, this.file.size - filePos);
      this.file.read(filePos, length).then(
        (data) => {
          reading = false;
          if (closed) return;
          filePos += data.length;
          handlers.chunk(data);
          pump();
        },
        (error: Error) => {
          reading = false;
          if (closed) return;
          closed = true;
          handlers.error(error);
        },
      );
    };
    queueMicrotask(pump);
    return {
      pause: () => void (paused = true),
      resume: () => {
        if (!paused) return;
        paused = false;
        pump();
      },
      close: () => void (closed = true),
    };
  }

  /** Frees the temp file once no attempt will read the body again. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.file?.close();
  }
}

/** The client's body as it arrives, counted against the limit; readable once. */
export class StreamedBody implements BodySource {
  readonly replayable = false;
  readonly length: number | undefined;
  private opened = false;

  constructor(private readonly req: IncomingMessage, private readonly maxBodySize: number, private readonly onTooLarge: (error: BodyTooLarge) => void) {
    const declared = req.headers['content-length'];
    this.length = declared === undefined ? undefined : Number(declared);
  }

  open(handlers: BodyHandlers): BodyReader {
    if (this.opened) throw new Error('a streamed body can be read once');
    this.opened = true;
    const req = this.req;
    let received = 0;
    let closed = false;
    const onData = (chunk: Buffer) => {
      if (closed) return;
      received += chunk.length;
      if (this.maxBodySize > 0 && received > this.maxBodySize) {
        stop();
        const error = new BodyTooLarge(this.maxBodySize);
        handlers.error(error);
        this.onTooLarge(error);
        return;
      }
      handlers.chunk(chunk);
    };
    const onEnd = () => {
      if (closed) return;
      stop();
      handlers.end();
    };
    const onCut = () => {
      if (closed || req.complete) return;
      stop();
      handlers.error(new Error('the client went away before the request body was complete'));
    };
    const stop = () => {
      closed = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onCut);
      req.off('close', onCut);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onCut);
    req.on('close', onCut);
    if (req.readableEnded) queueMicrotask(onEnd);
    return {
      pause: () => req.pause(),
      resume: () => req.resume(),
      close: stop,
    };
  }
}
