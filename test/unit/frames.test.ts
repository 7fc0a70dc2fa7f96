import assert from 'node:assert/strict';
import { test } from 'node:test';
import net from 'node:net';
import { FrameDecoder, FrameWriter, frameHeader } from '../../server/pool/frames';
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

/** Runs `use` with the two ends of a real loopback TCP connection, and closes both after. */
async function overLoopback(use: (sender: net.Socket, receiver: net.Socket) => Promise<void>): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const sender = net.connect(port, '127.0.0.1');
  const receiver = await accepted;
  try {
    await use(sender, receiver);
  } finally {
    sender.destroy();
    receiver.destroy();
    server.close();
  }
}

test('a turn of frames, small and large and text, reaches the other end of a real socket whole and in order', async () => {
  await overLoopback(async (sender, receiver) => {
    const seen: [number, number, string][] = [];
    const decoder = new FrameDecoder((type, id, payload) => seen.push([type, id, payload.length > 64 ? `${payload.length}:${payload[0]}:${payload[payload.length - 1]}` : payload.toString('latin1')]));
    receiver.on('data', (chunk: Buffer) => decoder.push(chunk));
    const writer = new FrameWriter(sender);
    // More than the first buffer holds, so the turn's buffer grows (and keeps what it had) twice.
    const big = Buffer.alloc(300_000, 0x62);
    big[big.length - 1] = 0x63;
    writer.sendText(FrameType.Request, 1, 'GET\0/\0\0http\0é');
    writer.send(FrameType.Body, 1, Buffer.from('ab'));
    writer.send(FrameType.Body, 1, big);
    writer.send(FrameType.BodyEnd, 1);
    for (let id = 2; id < 40; id++) writer.sendText(FrameType.Request, id, `head ${id}`);
    const want = 4 + 38;
    for (let i = 0; i < 500 && seen.length < want; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen.slice(0, 4), [
      [FrameType.Request, 1, 'GET\0/\0\0http\0é'],
      [FrameType.Body, 1, 'ab'],
      [FrameType.Body, 1, '300000:98:99'],
      [FrameType.BodyEnd, 1, ''],
    ]);
    assert.deepEqual(seen.slice(4).map(([, id, text]) => `${id} ${text}`), Array.from({ length: 38 }, (_, i) => `${i + 2} head ${i + 2}`));
  });
});

test('turn after turn, with the reader keeping up and then stalled, every frame arrives as it was written', async () => {
  await overLoopback(async (sender, receiver) => {
    const seen: string[] = [];
    const decoder = new FrameDecoder((type, id, payload) => seen.push(`${type} ${id} ${payload.length > 64 ? `${payload.length}:${payload[0]}:${payload[payload.length - 1]}` : payload.toString('latin1')}`));
    receiver.on('data', (chunk: Buffer) => decoder.push(chunk));
    const writer = new FrameWriter(sender);
    const want: string[] = [];
    const turn = async (t: number, bodyBytes: number) => {
      for (let j = 0; j < 5; j++) {
        writer.sendText(FrameType.Request, t * 10 + j, `turn ${t} head ${j}`);
        want.push(`${FrameType.Request} ${t * 10 + j} turn ${t} head ${j}`);
      }
      if (bodyBytes) {
        writer.send(FrameType.Body, t * 10, Buffer.alloc(bodyBytes, t % 256));
        want.push(`${FrameType.Body} ${t * 10} ${bodyBytes}:${t % 256}:${t % 256}`);
      }
      await new Promise((r) => setImmediate(r));
    };
    // Keeping up: each turn's bytes leave during write(), and the next turn reuses the buffer.
    for (let t = 1; t <= 30; t++) await turn(t, 0);
    // Stalled: the kernel's buffers fill, writes queue in the socket, and a queued buffer must not be written over.
    receiver.pause();
    for (let t = 31; t <= 90; t++) await turn(t, 100_000);
    assert.ok(sender.writableLength > 0, 'the stall made the socket queue writes');
    receiver.resume();
    for (let i = 0; i < 1000 && seen.length < want.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, want);
  });
});
