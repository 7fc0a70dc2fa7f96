import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import type { CompressionConfig } from '../../server/config/types';
import { compressedHead, compressionFor, isCompressibleType, negotiateEncoding, varyWithAcceptEncoding } from '../../server/proxy/compress';

const POLICY: CompressionConfig = { types: ['text/*', 'application/json', 'application/*+json', 'image/svg+xml'], minSize: 1024, gzipLevel: 6, brotliQuality: 4 };

describe('Accept-Encoding negotiation', () => {
  const cases: Array<[string | undefined, string | undefined, string]> = [
    [undefined, undefined, 'no header: identity'],
    ['', undefined, 'an empty header: identity'],
    ['gzip', 'gzip', 'gzip alone'],
    ['br', 'br', 'br alone'],
    ['gzip, deflate, br', 'br', 'a browser: br on the tie'],
    ['gzip, br', 'br', 'order does not matter on a tie'],
    ['gzip;q=1.0, br;q=0.9', 'gzip', 'the higher q wins over the brotli preference'],
    ['br;q=0, gzip', 'gzip', 'q=0 forbids br'],
    ['gzip;q=0, br;q=0', undefined, 'both forbidden'],
    ['*', 'br', '* accepts everything'],
    ['*;q=0.5, gzip;q=0.8', 'gzip', 'a named coding beats *'],
    ['*;q=0.5, br;q=0', 'gzip', '* stands only for the codings not named'],
    ['*;q=0', undefined, '*;q=0 refuses all'],
    ['identity;q=0', undefined, 'only identity named (refused): identity is still sent'],
    ['identity;q=0, gzip', 'gzip', 'identity refused, gzip accepted'],
    ['x-gzip', 'gzip', 'x-gzip is gzip'],
    ['GZIP;Q=0.5', 'gzip', 'names and q are case-insensitive'],
    ['gzip;q=abc', undefined, 'a malformed q counts as refused'],
    ['gzip;q=1.5', undefined, 'a q out of range counts as refused'],
    ['gzip;q=0.001', 'gzip', 'the smallest q above 0 accepts'],
    ['deflate, compress', undefined, 'codings ServeStack does not send'],
    [' br ; q=0.2 ,gzip;q=0.1', 'br', 'spaces around names and parameters'],
  ];
  for (const [header, expected, what] of cases) {
    test(`${JSON.stringify(header)} → ${expected ?? 'identity'} (${what})`, () => {
      assert.equal(negotiateEncoding(header), expected);
    });
  }

  test('only what is offered is chosen (a precompressed .gz and no .br)', () => {
    assert.equal(negotiateEncoding('br, gzip', ['gzip']), 'gzip');
    assert.equal(negotiateEncoding('br', ['gzip']), undefined);
  });

  test('a repeated header field counts as one list', () => {
    assert.equal(negotiateEncoding(['gzip;q=0.5', 'br;q=0.4']), 'gzip');
  });
});

describe('what is compressible', () => {
  test('types match with * for any part; parameters and case are ignored', () => {
    assert.ok(isCompressibleType('text/html; charset=utf-8', POLICY.types));
    assert.ok(isCompressibleType('TEXT/CSS', POLICY.types));
    assert.ok(isCompressibleType('application/ld+json', POLICY.types));
    assert.ok(isCompressibleType('image/svg+xml', POLICY.types));
    assert.ok(!isCompressibleType('image/png', POLICY.types));
    assert.ok(!isCompressibleType('application/octet-stream', POLICY.types));
    assert.ok(!isCompressibleType('application/jsonp', POLICY.types), 'a pattern matches the whole type');
    assert.ok(!isCompressibleType(undefined, POLICY.types));
    assert.ok(!isCompressibleType('text/plain', []), 'an empty list compresses nothing');
  });

  test('answers stay right when asked again, and past the number of types it remembers', () => {
    const types = ['text/css', 'text/css; charset=utf-8'];
    for (let i = 0; i < 200; i++) types.push(i % 2 ? `text/x-${i}` : `image/x-${i}`);
    for (let round = 0; round < 3; round++) {
      for (const [i, type] of types.entries()) assert.equal(isCompressibleType(type, POLICY.types), i < 2 || i % 2 === 1, `${type}, round ${round}`);
      assert.ok(!isCompressibleType('image/png', POLICY.types));
    }
  });

  const json = (extra: [string, string][] = []): [string, string][] => [['Content-Type', 'application/json'], ['Content-Length', '5000'], ...extra];
  const get = (headers: Record<string, string> = { 'accept-encoding': 'gzip, br' }) => ({ method: 'GET', headers });

  test('an app answer of a compressible type over minSize is compressed with the preferred coding', () => {
    assert.deepEqual(compressionFor(POLICY, get(), 200, json()), { encoding: 'br', vary: true });
    assert.deepEqual(compressionFor(POLICY, get(), 404, json()), { encoding: 'br', vary: true });
    assert.deepEqual(compressionFor(POLICY, get(), 200, [['Content-Type', 'text/plain']]), { encoding: 'br', vary: true }, 'no length (streamed): compressed');
  });

  test('never for HEAD, 204, 206, 304, an encoded answer, a Content-Range, no-transform, a small or incompressible answer', () => {
    const none = { encoding: undefined, vary: false };
    assert.deepEqual(compressionFor(POLICY, { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } }, 200, json()), none);
    for (const status of [101, 204, 206, 304]) assert.deepEqual(compressionFor(POLICY, get(), status, json()), none, String(status));
    assert.deepEqual(compressionFor(POLICY, get(), 200, json([['Content-Encoding', 'gzip']])), none);
    assert.deepEqual(compressionFor(POLICY, get(), 200, json([['Content-Range', 'bytes 0-1/5000']])), none);
    assert.deepEqual(compressionFor(POLICY, get(), 200, json([['Cache-Control', 'public, no-transform']])), none);
    assert.deepEqual(compressionFor(POLICY, get(), 200, [['Content-Type', 'application/json'], ['Content-Length', '1023']]), none);
    assert.deepEqual(compressionFor(POLICY, get(), 200, [['Content-Type', 'image/png'], ['Content-Length', '50000']]), none);
    assert.deepEqual(compressionFor(POLICY, get(), 200, json([['Content-Encoding', 'identity']])), { encoding: 'br', vary: true }, 'identity is no coding');
  });

  test('a Range request or a refusing client gets identity, with Vary: it could have been compressed', () => {
    assert.deepEqual(compressionFor(POLICY, get({ 'accept-encoding': 'gzip', range: 'bytes=0-1' }), 200, json()), { encoding: undefined, vary: true });
    assert.deepEqual(compressionFor(POLICY, get({}), 200, json()), { encoding: undefined, vary: true });
    assert.deepEqual(compressionFor(POLICY, get({ 'accept-encoding': 'gzip;q=0' }), 200, json()), { encoding: undefined, vary: true });
  });

  test('the compressed head drops Content-Length and Accept-Ranges, weakens a strong ETag, names the coding', () => {
    const head = compressedHead([['Content-Type', 'text/html'], ['content-length', '9000'], ['ETag', '"abc"'], ['Accept-Ranges', 'bytes'], ['X-Other', '1']], 'gzip');
    assert.deepEqual(head, [['Content-Type', 'text/html'], ['X-Other', '1'], ['Content-Encoding', 'gzip'], ['ETag', 'W/"abc"']]);
    assert.deepEqual(compressedHead([['ETag', 'W/"abc"']], 'br'), [['Content-Encoding', 'br'], ['ETag', 'W/"abc"']]);
  });

  test('Vary gains Accept-Encoding once; * stays', () => {
    assert.equal(varyWithAcceptEncoding(undefined), 'Accept-Encoding');
    assert.equal(varyWithAcceptEncoding('Cookie'), 'Cookie, Accept-Encoding');
    assert.equal(varyWithAcceptEncoding('cookie, accept-encoding'), 'cookie, accept-encoding');
    assert.equal(varyWithAcceptEncoding('*'), '*');
  });
});
