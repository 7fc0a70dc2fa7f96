// The dashboard's access rules: the page's socket takes the session cookie from its own
// origin only, and the page over HTTP answers 401 until the token is exchanged.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { checkUpgrade, presentedSession, SESSION_COOKIE } from '../../server/control/auth';
import { startControlServer, type ControlServer } from '../../server/control/server';
import { createFakeTarget } from './controlFakeTarget';

const port = 41234;
const token = 'ab'.repeat(32);
const session = 'cd'.repeat(32);
const page = { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, cookie: `other=1; ${SESSION_COOKIE}=${session}` };

describe('dashboard auth: the page\'s socket', () => {
  it('reads the session from the Cookie header among other cookies', () => {
    assert.equal(presentedSession({ cookie: page.cookie }), session);
    assert.equal(presentedSession({ cookie: 'other=1' }), undefined);
    assert.equal(presentedSession({}), undefined);
  });

  it('accepts the session cookie from the control server\'s own origin', () => {
    assert.equal(checkUpgrade('/dashboard/control', page, { port, token, session }), undefined);
  });

  it('refuses it without an Origin, from another origin, or with a wrong or missing session', () => {
    assert.equal(checkUpgrade('/dashboard/control', { ...page, origin: undefined }, { port, token, session })?.status, 403);
    assert.equal(checkUpgrade('/dashboard/control', { ...page, origin: 'http://127.0.0.1:8080' }, { port, token, session })?.status, 403);
    assert.equal(checkUpgrade('/dashboard/control', { ...page, cookie: `${SESSION_COOKIE}=${'ef'.repeat(32)}` }, { port, token, session })?.status, 401);
    assert.equal(checkUpgrade('/dashboard/control', { ...page, cookie: undefined }, { port, token, session })?.status, 401);
    assert.equal(checkUpgrade('/dashboard/control', page, { port, token })?.status, 401);
    assert.equal(checkUpgrade('/dashboard/control', { ...page, host: `evil.example:${port}` }, { port, token, session })?.status, 403);
  });

  it('never lets the session cookie open the main endpoint', () => {
    assert.equal(checkUpgrade('/control', page, { port, token, session })?.status, 401);
  });
});

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard auth: the page over HTTP', () => {
  let server: ControlServer;
  before(async () => {
    server = await startControlServer(createFakeTarget(), { token });
  });
  after(() => server.close());

  it('answers 401 for the page and its files without a session', async () => {
    for (const p of ['/dashboard/', '/dashboard', '/dashboard/dashboard.js', '/dashboard/index.html']) {
      const r = await get(server.port, p);
      assert.equal(r.status, 401, p);
      assert.ok(!r.body.includes(token));
    }
  });

  it('answers 401 to a wrong token and 403 to a foreign Host', async () => {
    assert.equal((await get(server.port, `/dashboard/?token=${'0'.repeat(64)}`)).status, 401);
    assert.equal((await get(server.port, `/dashboard/?token=${token}`, { Host: `evil.example:${server.port}` })).status, 403);
  });

  it('exchanges the token for an HttpOnly, SameSite=Strict cookie scoped to /dashboard/, and redirects without the token', async () => {
    const r = await get(server.port, `/dashboard/?token=${token}`);
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/dashboard/');
    const cookie = String((r.headers['set-cookie'] as string[])[0]);
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[0-9a-f]{64}; Path=/dashboard/; HttpOnly; SameSite=Strict$`));
    assert.ok(!cookie.includes(token), 'the cookie is not the token');
    const pageReply = await get(server.port, '/dashboard/', { Cookie: cookie.split(';')[0] });
    assert.equal(pageReply.status, 200);
    assert.match(String(pageReply.headers['content-security-policy']), /script-src 'nonce-[^']+'/);
    assert.match(pageReply.body, /<script nonce="[^"]+" src="\/dashboard\/dashboard\.js">/);
    assert.ok(!pageReply.body.includes('{{'), 'every placeholder filled');
    assert.equal((await get(server.port, '/dashboard/../server.ts', { Cookie: cookie.split(';')[0] })).status, 404);
    assert.equal((await get(server.port, '/dashboard/.hidden.js', { Cookie: cookie.split(';')[0] })).status, 404);
  });
});
