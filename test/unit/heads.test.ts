// The two heads on the worker channel, written on one side and read on the other by the
// real code of both: server/pool/heads.ts here, servestack_channel.py in a real python3.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { decodeResponseHead, encodeRequestHead, REQUEST_HEAD_FIELDS } from '../../server/pool/heads';
import type { UpstreamRequest } from '../../server/upstream/types';
import { findPython } from '../integration/harness';

const RUNTIME = path.resolve(__dirname, '..', '..', 'server', 'python');
const python = findPython([]);

function runPython(script: string, input: Buffer): Buffer {
  const run = spawnSync(python!, ['-c', script], { cwd: RUNTIME, input, timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr.toString());
  return run.stdout;
}

// Bytes as Node's parser hands them over: latin-1 strings, so é is one char (0xE9), and a
// UTF-8 "é" sent by a client is the two chars Ã©.
const request: UpstreamRequest = {
  method: 'POST',
  url: '/caf%C3%A9/Ã©?q=ÿ&b=',
  path: '/caf%C3%A9/Ã©',
  query: 'q=ÿ&b=',
  headers: [['host', '[::1]:8443'], ['cookie', 'a=1; b="x y"'], ['x-empty', ''], ['x-latin', 'é\tÿ'], ['x-forwarded-for', '::1']],
  httpVersion: '1.1',
  scheme: 'https',
  serverName: '::1',
  serverPort: 8443,
  remoteAddr: '::1',
  remotePort: 50123,
  routePrefix: '/',
  scriptName: '/absproxy/8443',
  body: { replayable: true } as unknown as UpstreamRequest['body'],
};

test('a request head written here is read by the Python runtime field for field, bytes intact', { skip: python ? false : 'no python3 found' }, () => {
  const out = runPython(
    'import json, sys, servestack_channel as ch\n' +
      'head = ch.decode_request_head(sys.stdin.buffer.read())\n' +
      'print(json.dumps([list(ch.REQUEST_HEAD_FIELDS), head]))',
    encodeRequestHead(request),
  );
  const [fields, head] = JSON.parse(out.toString('utf8')) as [string[], Record<string, unknown>];
  assert.deepEqual(fields, [...REQUEST_HEAD_FIELDS], 'both sides list the same fields in the same order');
  assert.deepEqual(head, {
    method: 'POST',
    path: '/caf%C3%A9/Ã©',
    query: 'q=ÿ&b=',
    scheme: 'https',
    serverName: '::1',
    serverPort: 8443,
    remoteAddr: '::1',
    remotePort: 50123,
    httpVersion: '1.1',
    hasBody: true,
    scriptName: '/absproxy/8443',
    headers: request.headers,
  });
  const bare = runPython('import json, sys, servestack_channel as ch\nh = ch.decode_request_head(sys.stdin.buffer.read())\nprint(json.dumps([h["hasBody"], h["scriptName"], h["headers"]]))', encodeRequestHead({ ...request, body: undefined, scriptName: undefined, headers: [] }));
  assert.deepEqual(JSON.parse(bare.toString('utf8')), [false, '', []]);
});

test('an answer head written by the Python runtime is read here: status, repeated and empty fields, latin-1', { skip: python ? false : 'no python3 found' }, () => {
  const out = runPython(
    'import sys, servestack_channel as ch\n' +
      'sys.stdout.buffer.write(ch.encode_head(201, [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"], ["X-Empty", ""], ["X-Latin", "caf\\u00e9"]]))',
    Buffer.alloc(0),
  );
  assert.deepEqual(decodeResponseHead(out), [201, [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['X-Empty', ''], ['X-Latin', 'café']]]);
  assert.deepEqual(decodeResponseHead(Buffer.from('304')), [304, []]);
});

test('an answer head is read field by field: within a larger payload, an empty last value, a cut head', () => {
  const head = Buffer.from('200\0Content-Type\0text/plain\0X-Last\0', 'latin1');
  const framed = Buffer.concat([Buffer.from('....'), head, Buffer.from('body')]);
  assert.deepEqual(decodeResponseHead(framed, 4, 4 + head.length), [200, [['Content-Type', 'text/plain'], ['X-Last', '']]]);
  assert.deepEqual(decodeResponseHead(Buffer.from('200\0', 'latin1')), [200, []]);
  assert.deepEqual(decodeResponseHead(Buffer.from('200\0A\0b\0Dangling', 'latin1')), [200, [['A', 'b']]]);
  assert.deepEqual(decodeResponseHead(Buffer.from('500\0\0v', 'latin1')), [500, [['', 'v']]]);
});
