// The worker contract is written once in server/protocol.ts and mirrored in the Python
// runtime's shared layer (server/python/servestack_channel.py); this test fails when the two
// drift apart.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FRAME_HEADER_BYTES, FrameType, WORKER_CONTRACT } from '../../server/protocol';

const pythonDir = path.join(__dirname, '..', '..', 'server', 'python');
// The debug frames are numbered in the module that sends them (imported only when debugging).
const source = ['servestack_channel.py', 'servestack_debug.py'].map((f) => readFileSync(path.join(pythonDir, f), 'utf8')).join('\n');

function pythonConstant(name: string): number {
  const m = new RegExp(`^${name} = (\\d+)`, 'm').exec(source);
  assert.ok(m, `servestack_channel.py defines no ${name}`);
  return Number(m[1]);
}

test('the Python runtime uses the exit codes, heartbeat and fd of the contract', () => {
  assert.equal(pythonConstant('EXIT_BOOT_FAILED'), WORKER_CONTRACT.exitBootFailed);
  assert.equal(pythonConstant('EXIT_APP_LOAD_FAILED'), WORKER_CONTRACT.exitAppLoadFailed);
  assert.equal(pythonConstant('HEARTBEAT_INTERVAL_MS'), WORKER_CONTRACT.heartbeatIntervalMs);
  assert.equal(pythonConstant('CHANNEL_FD'), WORKER_CONTRACT.channelFd);
  assert.equal(pythonConstant('CONTROL_FD'), WORKER_CONTRACT.controlFd);
});

test('every frame type has the same number on both sides', () => {
  const names: Record<keyof typeof FrameType, string> = {
    Request: 'F_REQUEST', Body: 'F_BODY', BodyEnd: 'F_BODY_END', Abort: 'F_ABORT', Stop: 'F_STOP',
    DumpStack: 'F_DUMP_STACK', Revoke: 'F_REVOKE', Pause: 'F_PAUSE', Resume: 'F_RESUME', Ready: 'F_READY', Heartbeat: 'F_HEARTBEAT',
    Start: 'F_START', Chunk: 'F_CHUNK', End: 'F_END', LoadFailed: 'F_LOAD_FAILED', Revoked: 'F_REVOKED', Answer: 'F_ANSWER',
    WsConnect: 'F_WS_CONNECT', WsAccept: 'F_WS_ACCEPT', WsText: 'F_WS_TEXT', WsBinary: 'F_WS_BINARY', WsClose: 'F_WS_CLOSE',
    WsEnd: 'F_WS_END', WsHoldClient: 'F_WS_HOLD_CLIENT', WsReleaseClient: 'F_WS_RELEASE_CLIENT',
    StackReport: 'F_STACK_REPORT', DebugState: 'F_DEBUG_STATE',
  };
  for (const [key, pyName] of Object.entries(names)) {
    assert.equal(pythonConstant(pyName), FrameType[key as keyof typeof FrameType], `${key} differs`);
  }
});

test('the frame header is u32 length, u8 type, u32 request id, big-endian', () => {
  assert.match(source, /HEADER = struct\.Struct\(">IBI"\)/);
  assert.equal(FRAME_HEADER_BYTES, 4 + 1 + 4);
});
