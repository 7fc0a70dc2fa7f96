// The checks on a control upgrade request, one named case each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkUpgrade, isAllowedHost, isAllowedOrigin, presentedToken, tokensEqual } from '../../server/control/auth';

const port = 41234;
const token = 'ab'.repeat(32);
const ok = { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` };

describe('control auth', () => {
  it('compares tokens exactly, whatever their lengths', () => {
    assert.equal(tokensEqual(token, token), true);
    assert.equal(tokensEqual(token.slice(0, -1), token), false);
    assert.equal(tokensEqual(`${token}0`, token), false);
    assert.equal(tokensEqual('', token), false);
  });

  it('accepts loopback names and addresses with the control port as Host', () => {
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, `127.1.2.3:${port}`]) assert.equal(isAllowedHost(h, port), true, h);
  });

  it('refuses other Hosts: rebinding names, another port, no port, userinfo tricks', () => {
    for (const h of [undefined, '', `evil.example:${port}`, `localhost.evil.example:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`, `127.0.0.1:${port}@evil.example`, `127.0.0.256:${port}`, `[::2]:${port}`, `0.0.0.0:${port}`])
      assert.equal(isAllowedHost(h, port), false, String(h));
  });

  it('allows no Origin (not a browser), its own origins and listed extra ones', () => {
    assert.equal(isAllowedOrigin(undefined, port), true);
    assert.equal(isAllowedOrigin(`http://127.0.0.1:${port}`, port), true);
    assert.equal(isAllowedOrigin(`http://localhost:${port}`, port), true);
    assert.equal(isAllowedOrigin('http://127.0.0.1:8080', port, ['http://127.0.0.1:8080']), true);
  });

  it('refuses foreign, "null", https and other-port origins', () => {
    for (const o of ['http://evil.example', 'null', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`, `http://127.0.0.1:${port}.evil.example`]) assert.equal(isAllowedOrigin(o, port), false, o);
  });

  it('takes the token from a Bearer header or the servestack.token subprotocol, never elsewhere', () => {
    assert.equal(presentedToken({ authorization: `Bearer ${token}` }), token);
    assert.equal(presentedToken({ authorization: `bearer  ${token} ` }), token);
    assert.equal(presentedToken({ 'sec-websocket-protocol': `servestack.v1, servestack.token.${token}` }), token);
    assert.equal(presentedToken({ authorization: `Basic ${token}` }), undefined);
    assert.equal(presentedToken({ cookie: `token=${token}` }), undefined);
  });

  it('orders the checks: path 404, Host 403, Origin 403, token 401', () => {
    assert.equal(checkUpgrade('/x', ok, { port, token })?.status, 404);
    assert.equal(checkUpgrade('/control', { ...ok, host: 'evil.example' }, { port, token })?.status, 403);
    assert.equal(checkUpgrade('/control', { ...ok, origin: 'http://evil.example' }, { port, token })?.status, 403);
    assert.equal(checkUpgrade('/control', { host: ok.host }, { port, token })?.status, 401);
    assert.equal(checkUpgrade('/control', { ...ok, authorization: 'Bearer nope' }, { port, token })?.status, 401);
    assert.equal(checkUpgrade('/control', ok, { port, token }), undefined);
  });

  it('never puts the token in a refusal reason', () => {
    const r = checkUpgrade('/control', { ...ok, origin: 'http://evil.example' }, { port, token });
    assert.ok(r && !r.reason.includes(token));
  });
});
