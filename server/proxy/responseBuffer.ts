// Response buffering (NGINX's proxy_buffering): the upstream's answer moves out of the
// worker as fast as the worker writes it, whatever the client's speed. What the client
// has not taken yet waits in memory up to `bufferSize`, then in a temp file up to
// `maxTempFileSize`; only when both are full is the upstream asked to pause, and it is
// always resumed (or cancelled) after. Nothing waits while the client keeps up: a chunk
// goes straight to the socket, so a stream (SSE, a slow generator) gains no latency.
// An answer that cannot be completed is cut, never ended cleanly, so the client can tell.
import type { ServerResponse } from 'node:http';
import type { TempFile, TempFiles } from '../upstream/tempFiles';

/** The least read from the temp file; a read is as large as the memory allowance when that is larger. */
const FILE_READ_BYTES = 64 * 1024;

export interface ResponseBufferOptions {
  bufferSize: number;
  /** 0: no temp file; memory alone, then pause. */
  maxTempFileSize: number;
  tempFiles: TempFiles;
  /** Both buffers are full: hold the upstream. */
  pauseUpstream(): void;
  resumeUpstream(): void;
}

/** How long a client may take a large chunk from memory before the rest of it moves to the temp file (ms). */
const SPILL_AFTER_MS = 100;

/** A stretch of the answer not sent yet: bytes in memory, or a region of the temp file. */
type Segment = { buffer: Buffer; start?: undefined; end?: undefined } | { buffer?: undefined; start: number; end: number };

export class ResponseBuffer {
  /** What the client has not taken yet, in order. */
  private readonly queue: Segment[] = [];
  private inMemory = 0;
  private file: TempFile | undefined;
  private opening: Promise<void> | undefined;
  /** Chunks that arrived while the temp file was being opened. */
  private waitingForFile: Buffer[] = [];
  private clientBlocked = false;
  private reading = false;
  private upstreamPaused = false;
  private ended = false;
  private finished = false;
  /** Body bytes given to the response, for the access log. */
  private handedOn = 0;
  private spillTimer: NodeJS.Timeout | undefined;

  constructor(private readonly res: ServerResponse, private readonly options: ResponseBufferOptions) {
    res.on('drain', this.onDrain);
  }

  /** True while any byte of the answer is still held here. */
  get holding(): boolean {
    return this.queue.length > 0 || this.waitingForFile.length > 0;
  }

  write(chunk: Buffer): void {
    if (this.finished) return;
    if (chunk.length > this.options.bufferSize && this.options.maxTempFileSize > 0) return this.writeLarge(chunk);
    if (!this.clientBlocked && !this.holding) return this.send(chunk);
    this.hold(chunk);
  }

  /**
   * A chunk larger than the memory allowance (a whole answer that came in one frame). It
   * is in memory already, so it waits there while the client takes it, in pieces of the
   * allowance; a client that has not taken it within SPILL_AFTER_MS gets the rest from the
   * temp file, and the chunk's memory is freed once the bytes are there and Node has
   * written the piece it holds. Twenty slow clients of a 24 MiB answer held 480 MiB
   * before, for as long as they took.
   */
  private writeLarge(chunk: Buffer): void {
    // Chunks waiting for the temp file are ahead of this one: it waits behind them.
    if (this.opening || this.waitingForFile.length) return this.hold(chunk);
    this.queue.push({ buffer: chunk });
    this.inMemory += chunk.length;
    this.spillTimer ??= setTimeout(this.spillLarge, SPILL_AFTER_MS);
    this.pump();
  }

  /** What is left of each large chunk held in memory moves to the temp file, in place in the queue. */
  private readonly spillLarge = (): void => {
    this.spillTimer = undefined;
    if (this.finished || this.options.maxTempFileSize <= 0 || !this.queue.some((segment) => this.isLarge(segment))) return;
    if (this.opening) return void this.opening.then(this.spillLarge);
    if (!this.file) return void this.openFile().then(this.spillLarge);
    for (let i = 0; i < this.queue.length; i++) {
      const segment = this.queue[i];
      if (!this.isLarge(segment) || this.file.size + segment.buffer!.length > this.options.maxTempFileSize) continue;
      const start = this.file.size;
      this.file.append(segment.buffer!);
      this.inMemory -= segment.buffer!.length;
      this.queue[i] = { start, end: this.file.size };
    }
    this.checkPressure();
  };

  /** The upstream is done: end once the client has taken everything. */
  end(): void {
    if (this.finished) return;
    this.ended = true;
    this.pump();
  }

  /** The answer cannot be completed (a BodySink's abort): cut the connection now, so the client sees it is short. */
  abort(): void {
    if (this.finished) return;
    this.release();
    this.res.destroy();
  }

  /** Done with the answer (all of it sent, or the client went away): drop what is held, close the temp file. */
  release(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.spillTimer) clearTimeout(this.spillTimer);
    this.res.off('drain', this.onDrain);
    this.queue.length = 0;
    this.waitingForFile = [];
    this.inMemory = 0;
    this.file?.close();
    this.file = undefined;
  }

  /**
   * Body bytes that left for the client (NGINX's $body_bytes_sent): what was given to the
   * response less what Node still holds for the socket. A client that left early is logged
   * with what it could have read, not with the size of the answer.
   */
  sentBytes(): number {
    return Math.max(0, this.handedOn - (this.res.writableFinished ? 0 : this.res.writableLength));
  }

  private send(chunk: Buffer): void {
    this.handedOn += chunk.length;
    if (!this.res.write(chunk)) this.clientBlocked = true;
  }

  private hold(chunk: Buffer): void {
    const { bufferSize, maxTempFileSize } = this.options;
    if (this.opening) {
      this.waitingForFile.push(chunk);
    } else if (this.inMemory + chunk.length <= bufferSize || maxTempFileSize <= 0) {
      this.queue.push({ buffer: chunk });
      this.inMemory += chunk.length;
    } else if (this.file && this.file.size + chunk.length <= maxTempFileSize) {
      this.toFile(chunk);
    } else if (!this.file) {
      this.waitingForFile.push(chunk);
      void this.openFile();
    } else {
      // Both full: keep this chunk in memory and hold the upstream until the client catches up.
      this.queue.push({ buffer: chunk });
      this.inMemory += chunk.length;
    }
    this.checkPressure();
  }

  private isLarge(segment: Segment): boolean {
    return segment.buffer !== undefined && segment.buffer.length > this.options.bufferSize;
  }

  /** Opens the temp file; the chunks that waited for it are held again, in order. */
  private openFile(): Promise<void> {
    const settle = (): void => {
      this.opening = undefined;
      const waiting = this.waitingForFile;
      this.waitingForFile = [];
      for (const c of waiting) this.hold(c);
      this.pump();
    };
    this.opening = this.options.tempFiles.create().then(
      (file) => {
        if (this.finished) {
          this.opening = undefined;
          return file.close();
        }
        this.file = file;
        file.onWritten = () => this.checkPressure();
        settle();
      },
      () => {
        // No temp file can be had: memory alone, and the upstream waits when it is full.
        this.options.maxTempFileSize = 0;
        settle();
      },
    );
    return this.opening;
  }

  private toFile(chunk: Buffer): void {
    const file = this.file!;
    const start = file.size;
    file.append(chunk);
    const last = this.queue[this.queue.length - 1];
    if (last && last.buffer === undefined && last.end === start) last.end = file.size;
    else this.queue.push({ start, end: file.size });
  }

  private checkPressure(): void {
    const { bufferSize, maxTempFileSize } = this.options;
    // Bytes on their way to the temp file are in memory until they land: a disk slower than
    // the worker must not let them pile up.
    const unwritten = this.file?.unwritten ?? 0;
    const held = this.inMemory + unwritten;
    const fileFull = maxTempFileSize <= 0 || (this.file !== undefined && this.file.size >= maxTempFileSize);
    const diskBehind = unwritten >= bufferSize;
    if (!this.upstreamPaused && ((held >= bufferSize && fileFull) || diskBehind)) {
      this.upstreamPaused = true;
      this.options.pauseUpstream();
    } else if (this.upstreamPaused && unwritten < bufferSize / 2 && (!fileFull || held < bufferSize / 2)) {
      this.upstreamPaused = false;
      this.options.resumeUpstream();
    }
  }


  private readonly onDrain = (): void => {
    this.clientBlocked = false;
    this.pump();
  };

  /** Sends held bytes while the client takes them; ends the response when all is sent. */
  private pump(): void {
    while (!this.finished && !this.clientBlocked && !this.reading) {
      const head = this.queue[0];
      if (!head) break;
      if (head.buffer !== undefined) {
        // A large chunk goes in pieces of the allowance, so that when the rest moves to the
        // temp file, Node holds at most one piece of it for the socket. (A piece is a view
        // of the chunk, which lives until Node has written it: copying the pieces made a
        // fast client's 24 MiB download take half again as long.)
        const large = this.isLarge(head);
        const piece = large ? head.buffer.subarray(0, this.options.bufferSize) : head.buffer;
        if (large) head.buffer = head.buffer.subarray(piece.length);
        else this.queue.shift();
        this.inMemory -= piece.length;
        this.send(piece);
        continue;
      }
      this.readFileSegment(head);
      return;
    }
    if (this.finished) return;
    if (!this.queue.some((s) => s.buffer === undefined) && this.file && !this.opening) this.file.reset();
    this.checkPressure();
    if (this.ended && !this.holding && !this.reading && !this.opening) {
      this.release();
      this.res.end();
    }
  }

  private readFileSegment(segment: { start: number; end: number }): void {
    this.reading = true;
    // Up to the memory allowance a read: a client that keeps up gets the file back in few
    // trips through the thread pool, and no more than the allowance is in memory.
    const length = Math.min(Math.max(FILE_READ_BYTES, this.options.bufferSize), segment.end - segment.start);
    this.file!.read(segment.start, length).then(
      (data) => {
        this.reading = false;
        if (this.finished) return;
        segment.start += data.length;
        if (segment.start >= segment.end) this.queue.shift();
        this.send(data);
        this.pump();
      },
      () => {
        this.reading = false;
        this.abort(); // the held bytes are lost: the client must see a cut answer, not a clean short one
      },
    );
  }
}
