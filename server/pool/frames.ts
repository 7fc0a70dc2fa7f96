// The framed worker channel, Node side: decode frames from a byte stream, and batch
// every frame written in one event-loop turn into a single socket write (the worker
// protocol section of DESIGN.md measured this as a large share of the speed-up).
import type { Socket } from 'node:net';
import { FRAME_HEADER_BYTES, type FrameTypeValue } from '../protocol';

export type FrameHandler = (type: number, requestId: number, payload: Buffer) => void;

export class FrameDecoder {
  private pending: Buffer | undefined;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const length = buf.readUInt32BE(pos);
      const end = pos + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      const type = buf[pos + 4];
      const id = buf.readUInt32BE(pos + 5);
      this.onFrame(type, id, buf.subarray(pos + FRAME_HEADER_BYTES, end));
      pos = end;
    }
    // Copy the remainder so a large chunk is not kept alive by a small tail.
    this.pending = pos === buf.length ? undefined : Buffer.from(buf.subarray(pos));
  }
}

export function frameHeader(type: FrameTypeValue, requestId: number, payloadLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payloadLength, 0);
  header[4] = type;
  header.writeUInt32BE(requestId, 5);
  return header;
}

/** Collects frames during one event-loop turn and writes them as one buffer. */
export class FrameWriter {
  private parts: Buffer[] = [];
  private scheduled = false;

  constructor(private readonly socket: Socket) {}

  send(type: FrameTypeValue, requestId: number, payload?: Buffer): void {
    this.parts.push(frameHeader(type, requestId, payload ? payload.length : 0));
    if (payload && payload.length) this.parts.push(payload);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
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
