// The framed worker channel, Node side: decode frames from a byte stream, and batch
// every frame written in one event-loop turn into a single socket write (the worker
// protocol section of DESIGN.md measured this as a large share of the speed-up).
import type { Socket } from 'node:net';
import { FRAME_HEADER_BYTES, type FrameTypeValue } from '../protocol';

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
      const end = pos + FRAME_HEADER_BYTES + buf.readUInt32BE(pos);
      if (end > buf.length) {
        this.need = end - pos;
        break;
      }
      this.onFrame(buf[pos + 4], buf.readUInt32BE(pos + 5), buf.subarray(pos + FRAME_HEADER_BYTES, end));
      pos = end;
    }
    const rest = buf.subarray(pos);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
  }
}

export function frameHeader(type: FrameTypeValue, requestId: number, payloadLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payloadLength, 0);
  header[4] = type;
  header.writeUInt32BE(requestId, 5);
  return header;
}

/**
 * Collects frames during one event-loop turn and writes them as one buffer. The flush runs
 * in setImmediate, after every socket read of the turn: under load, the requests of many
 * connections go to a worker in one write (process.nextTick flushed after each one).
 */
export class FrameWriter {
  private parts: Buffer[] = [];
  private scheduled = false;

  constructor(private readonly socket: Socket) {}

  send(type: FrameTypeValue, requestId: number, payload?: Buffer): void {
    this.parts.push(frameHeader(type, requestId, payload ? payload.length : 0));
    if (payload && payload.length) this.parts.push(payload);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** True when the socket's buffer is full and the sender should pause its source. */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const parts = this.parts;
    this.parts = [];
    if (this.socket.destroyed || parts.length === 0) return;
    this.socket.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  };
}
