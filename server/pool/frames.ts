// The framed worker channel, Node side: decode frames from a byte stream, and batch
// every frame written in one event-loop turn into a single socket write (the worker
// protocol section of DESIGN.md measured this as a large share of the speed-up).
import type { Socket } from 'node:net';
import { FRAME_HEADER_BYTES, type FrameTypeValue } from '../protocol';
import { atTurnEndForWorkers } from '../turnEnd';

export type FrameHandler = (type: number, requestId: number, payload: Buffer) => void;

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes needed before a frame can complete: chunks are joined only then, never per chunk. */
  private need = FRAME_HEADER_BYTES;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size < this.need) return;
    const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    let pos = 0;
    this.need = FRAME_HEADER_BYTES;
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(pos);
      const end = pos + FRAME_HEADER_BYTES + length;
      if (end > buf.length) {
        this.need = end - pos;
        break;
      }
      // An empty payload (End, Heartbeat) is one shared buffer, not a view per frame.
      this.onFrame(buf[pos + 4], buf.readUInt32BE(pos + 5), length === 0 ? EMPTY : buf.subarray(pos + FRAME_HEADER_BYTES, end));
      pos = end;
    }
    // The list is reused: a new one on every read was garbage on every read.
    this.chunks.length = 0;
    if (pos < buf.length) this.chunks.push(pos === 0 ? buf : buf.subarray(pos));
    this.size = buf.length - pos;
  }
}

const EMPTY = Buffer.alloc(0);

/** A frame's header, at `at` in `buf`: payload length, type, request id. */
function writeFrameHeader(buf: Buffer, at: number, type: FrameTypeValue, requestId: number, payloadLength: number): void {
  buf.writeUInt32BE(payloadLength, at);
  buf[at + 4] = type;
  buf.writeUInt32BE(requestId, at + 5);
}

export function frameHeader(type: FrameTypeValue, requestId: number, payloadLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(header, 0, type, requestId, payloadLength);
  return header;
}

/**
 * Collects frames during one event-loop turn and writes them as one buffer. The flush runs
 * in setImmediate, after every socket read of the turn: under load, the requests of many
 * connections go to a worker in one write (process.nextTick flushed after each one).
 * Frames are written straight into the turn's buffer: no header object per frame, no join.
 */
export class FrameWriter {
  private batch: Buffer | undefined = undefined;
  private used = 0;
  private scheduled = false;

  constructor(private readonly socket: Socket) {}

  send(type: FrameTypeValue, requestId: number, payload?: Buffer): void {
    const length = payload ? payload.length : 0;
    const at = this.reserve(type, requestId, length);
    if (length) payload!.copy(this.batch!, at);
  }

  /** A frame whose payload is latin-1 text (a request head, heads.ts): written as bytes, one per character. */
  sendText(type: FrameTypeValue, requestId: number, text: string): void {
    const at = this.reserve(type, requestId, text.length);
    this.batch!.write(text, at, text.length, 'latin1');
  }

  /** True when the socket's buffer is full and the sender should pause its source. */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Room for one frame in the turn's buffer, its header written; returns where its payload goes. */
  private reserve(type: FrameTypeValue, requestId: number, length: number): number {
    const need = FRAME_HEADER_BYTES + length;
    let batch = this.batch;
    if (!batch || batch.length - this.used < need) {
      // Small batches come from Node's pooled slab; a big body chunk gets a buffer of its own size.
      const grown = Buffer.allocUnsafe(Math.max(BATCH_BYTES, this.used + need, 2 * this.used));
      if (batch) batch.copy(grown, 0, 0, this.used);
      this.batch = batch = grown;
    }
    const at = this.used;
    writeFrameHeader(batch, at, type, requestId, length);
    this.used = at + need;
    if (!this.scheduled) {
      this.scheduled = true;
      atTurnEndForWorkers(this.flush);
    }
    return at + FRAME_HEADER_BYTES;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.batch;
    const used = this.used;
    this.batch = undefined;
    this.used = 0;
    if (this.socket.destroyed || !batch || used === 0) return;
    this.socket.write(batch.subarray(0, used));
    // Nothing left queued: the kernel took every byte during write() (the usual case on a
    // worker's socketpair), so the next turn writes into the same buffer instead of a new
    // one (a slab allocation every few requests). Queued bytes still belong to the socket.
    if (this.socket.writableLength === 0 && batch.length <= MAX_KEPT_BATCH_BYTES) this.batch = batch;
  };
}

/** A turn's buffer grown past this (a big body chunk) is not kept for the next turn. */
const MAX_KEPT_BATCH_BYTES = 64 * 1024;

/** A turn's first buffer: a few request heads, and under Node's pool size (so it is a slice of the shared slab). */
const BATCH_BYTES = 2048;
