import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder, frameHeader } from '../../server/pool/frames';
import { FrameType } from '../../server/protocol';

function frame(type: number, id: number, payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(type as never, id, payload.length), payload]);
}

test('frames split at every byte boundary decode to the same frames', () => {
  const stream = Buffer.concat([
    frame(FrameType.Start, 7, Buffer.from('[200,[]]')),
    frame(FrameType.Chunk, 7, Buffer.alloc(70000, 0x61)),
    frame(FrameType.End, 7, Buffer.alloc(0)),
    frame(FrameType.Heartbeat, 0, Buffer.alloc(0)),
  ]);
  for (const step of [1, 2, 9, 10, 4096, stream.length]) {
    const seen: [number, number, number][] = [];
    const decoder = new FrameDecoder((type, id, payload) => seen.push([type, id, payload.length]));
    for (let i = 0; i < stream.length; i += step) decoder.push(stream.subarray(i, i + step));
    assert.deepEqual(seen, [[FrameType.Start, 7, 8], [FrameType.Chunk, 7, 70000], [FrameType.End, 7, 0], [FrameType.Heartbeat, 0, 0]], `step ${step}`);
  }
});

test('request ids use all 32 bits', () => {
  const seen: number[] = [];
  new FrameDecoder((_t, id) => seen.push(id)).push(frame(FrameType.End, 0xfffffffe, Buffer.alloc(0)));
  assert.deepEqual(seen, [0xfffffffe]);
});
