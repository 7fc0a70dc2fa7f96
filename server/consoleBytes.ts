// The console's text while it waits for its batched write, held as bytes outside the
// JavaScript heap. Kept as strings, every line waited up to the log's flush interval,
// outlived two young-generation GCs under load and was promoted: at 50k static requests
// a second that was 3 MB/s of old-generation garbage, which grew the front's heap by
// some 10 MB between full GCs. Copied here at once, the string dies young.
//
// The chunks are reused once their write is done: a fresh buffer per flush left malloc's
// heap 20 MB larger after a run (freed 64 KiB blocks, fragmented).

/** Bytes of one chunk; a longer text gets a buffer of its own. */
const CHUNK_BYTES = 64 * 1024;
/** Chunks kept for reuse; more are made while writes are slow to complete, and dropped after. */
const SPARE_CHUNKS = 4;

export class ConsoleBytes {
  private chunk: Buffer | undefined;
  private used = 0;
  private ready: Buffer[] = [];
  private readonly spare: Buffer[] = [];
  /** The memory of this buffer's own chunks (a long text's buffer is not one). */
  private readonly chunkMemory = new WeakSet<ArrayBufferLike>();

  /** Appends `text` (UTF-8), then a line end when `newline` is set. */
  append(text: string, newline: boolean): void {
    // UTF-8 takes at most three bytes per UTF-16 unit; the line end one more.
    const most = text.length * 3 + 1;
    if (most > CHUNK_BYTES) {
      this.seal();
      this.ready.push(Buffer.from(newline ? text + '\n' : text, 'utf8'));
      return;
    }
    if (this.used + most > CHUNK_BYTES) this.seal();
    if (this.chunk === undefined) this.chunk = this.spare.pop() ?? this.newChunk();
    this.used += this.chunk.write(text, this.used, 'utf8');
    if (newline) this.chunk[this.used++] = 0x0a;
  }

  get empty(): boolean {
    return this.ready.length === 0 && this.used === 0;
  }

  /**
   * Everything appended so far, in order, and empties the buffer. Each piece is to be
   * given back with done() once its write has completed (a stream may hold it until then).
   */
  take(): Buffer[] {
    this.seal();
    const out = this.ready;
    this.ready = [];
    return out;
  }

  /** A piece from take() is written: its chunk may be filled again. */
  done(piece: Buffer): void {
    if (!this.chunkMemory.has(piece.buffer) || this.spare.length >= SPARE_CHUNKS) return;
    this.spare.push(Buffer.from(piece.buffer, 0, CHUNK_BYTES));
  }

  private newChunk(): Buffer {
    const chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.chunkMemory.add(chunk.buffer);
    return chunk;
  }

  private seal(): void {
    if (this.chunk === undefined || this.used === 0) return;
    this.ready.push(this.chunk.subarray(0, this.used));
    this.chunk = undefined;
    this.used = 0;
  }
}
