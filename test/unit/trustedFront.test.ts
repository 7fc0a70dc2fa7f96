// The pure part of the front's trust: which peers are believed, which prefixes are
// usable, how a request is mounted, and the LAN address picked from the interfaces.
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, test } from 'node:test';
import { lanAddress, namedUrl } from '../../server/network';
import { cleanPrefix, expandPathPrefix, isTrustedPeer, resolveMount, trustList, trustedProxyError } from '../../server/proxy/trustedFront';

describe('trustedProxies entries', () => {
  test('addresses and CIDR ranges pass; anything else says what to write', () => {
    for (const ok of ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8']) assert.equal(trustedProxyError(ok), undefined, ok);
    assert.match(trustedProxyError('localhost')!, /not an IP address or a CIDR range; write e\.g\. "127\.0\.0\.1"/);
    assert.match(trustedProxyError('10.0.0.0/33')!, /prefix length out of range; use \/0 to \/32/);
  });
  test('a peer is trusted only when listed (IPv4-mapped addresses are already unwrapped by the caller)', () => {
    const list = trustList(['127.0.0.1', '10.0.0.0/8']);
    assert.equal(isTrustedPeer(list, '127.0.0.1'), true);
    assert.equal(isTrustedPeer(list, '10.2.3.4'), true);
    assert.equal(isTrustedPeer(list, '127.0.0.2'), false);
    assert.equal(isTrustedPeer(list, '::1'), false);
    assert.equal(isTrustedPeer(trustList([]), '127.0.0.1'), false);
  });
});

describe('mounting a request', () => {
  test('under --path-prefix the prefix is taken off and becomes the script name; elsewhere nothing changes', () => {
    const trust = { pathPrefix: expandPathPrefix('/absproxy/{port}/', 8000) };
    assert.deepEqual(resolveMount('/absproxy/8000/static/a.css?v=1', '127.0.0.1', {}, trust), { kind: 'mounted', url: '/static/a.css?v=1', scriptName: '/absproxy/8000' });
    assert.deepEqual(resolveMount('/absproxy/80001/x', '127.0.0.1', {}, trust), { kind: 'mounted', url: '/absproxy/80001/x', scriptName: '' });
    assert.deepEqual(resolveMount('/absproxy/8000', '127.0.0.1', {}, trust), { kind: 'redirect', location: '/absproxy/8000/' });
  });
  test('claims of an untrusted peer are ignored; a trusted one\'s are checked field by field', () => {
    const headers = { 'x-forwarded-prefix': '/app', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.test', 'x-forwarded-for': '1.2.3.4', 'x-forwarded-port': '443' };
    assert.deepEqual(resolveMount('/', '127.0.0.1', headers, {}), { kind: 'mounted', url: '/', scriptName: '' });
    const trusted = { trusted: trustList(['127.0.0.1']) };
    assert.deepEqual(resolveMount('/', '127.0.0.1', headers, trusted), {
      kind: 'mounted', url: '/', scriptName: '/app', claims: { for: '1.2.3.4', proto: 'https', host: 'a.test', port: '443' },
    });
    const bad = { 'x-forwarded-prefix': 'app', 'x-forwarded-proto': 'gopher', 'x-forwarded-host': 'a b', 'x-forwarded-for': 'me', 'x-forwarded-port': '99999' };
    assert.deepEqual(resolveMount('/', '127.0.0.1', bad, trusted), { kind: 'mounted', url: '/', scriptName: '', claims: {} });
  });
  test('a usable prefix is absolute, without dot segments, controls or query', () => {
    assert.equal(cleanPrefix('/app/'), '/app');
    assert.equal(cleanPrefix('/'), '');
    for (const bad of ['app', '/a/../b', '/a/%2e%2e/b', '/a?b', '/a\r\nb', '/a b']) assert.equal(cleanPrefix(bad), undefined, bad);
  });
});

describe('network addresses', () => {
  const info = (address: string, internal: boolean, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo =>
    (family === 'IPv4' ? { address, internal, family, netmask: '', mac: '', cidr: null } : { address, internal, family, netmask: '', mac: '', cidr: null, scopeid: 0 });
  test('the LAN address is the first non-internal IPv4 address, bridges skipped', () => {
    assert.equal(lanAddress({ lo: [info('127.0.0.1', true)], docker0: [info('172.17.0.1', false)], wlan0: [info('fe80::1', false, 'IPv6'), info('192.168.1.20', false)] }), '192.168.1.20');
    assert.equal(lanAddress({ lo: [info('127.0.0.1', true)] }), undefined);
  });
  test('a name is served as NAME.localhost', () => {
    assert.equal(namedUrl('shop', 8080), 'http://shop.localhost:8080/');
  });
});
