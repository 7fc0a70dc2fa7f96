// HTTPS end to end: the local CA and its certificates seen by real TLS clients, HTTP/2 and
// HTTP/1.1 on one port answering alike (curl, Node's http2 client), the redirect from
// plain HTTP, the user's own certificate files and their errors, `servestack trust` on an
// NSS database, and Debian's chromium loading the page with no certificate error. Every
// CA, NSS database and HOME is a temp folder: the real user's stores are never touched
// (and `trust --system` is never run here: it would change this machine's store).
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { connectControl } from '../../server/control/client';
import { readServerState } from '../../server/control/stateFile';
import { parseConfigText } from '../../server/config';
import { Logger } from '../../server/log';
import { buildRoutes, ProxyServer } from '../../server/proxy/server';
import { prepareServerTls } from '../../server/tls/serverTls';
import { generateKeyPair, privateKeyPem, randomSerial, x509 } from '../../server/tls/x509';
import { TempFiles } from '../../server/upstream/tempFiles';
import { CLI, eventually, findPython, ROOT, serve, tempDir, type ServeProcess } from './harness';

const python = findPython();
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasCurlHttp2 = spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout?.includes('HTTP2') ?? false;
const hasCertutil = spawnSync('certutil', ['-H']).error === undefined;

const APP = `
import json, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def parts():
            for i in range(5):
                yield ("part %d\\n" % i).encode()
                time.sleep(0.02)
        return parts()
    if path == "/echo":
        data = environ["wsgi.input"].read()
        body = json.dumps({"length": len(data), "sha256": __import__("hashlib").sha256(data).hexdigest()}).encode()
    else:
        keys = ["wsgi.url_scheme", "HTTP_HOST", "HTTP_X_FORWARDED_PROTO", "SERVER_PORT", "REQUEST_METHOD", "QUERY_STRING"]
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
`;

/** A folder with the app above, a static folder (a 200 KiB file) and servestack.json with `extra` fields. */
function site(extra: Record<string, unknown>): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'app.py'), APP);
  mkdirSync(path.join(dir, 'static'));
  const big = Buffer.alloc(200 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff;
  writeFileSync(path.join(dir, 'static', 'blob.bin'), big);
  writeFileSync(path.join(dir, 'static', 'page.html'), '<!doctype html><title>ServeStack over HTTPS</title><h1 id="ok">served over HTTPS</h1>\n');
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
    pools: { web: { app: 'app:application', workers: 1 } },
    routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web', maxBodySize: '64k' }],
    ...extra,
  }, null, 2));
  return dir;
}

/** A TLS handshake with `ca` as the only roots; what the client concluded, and the peer certificate. */
function handshake(port: number, ca: string | undefined, servername = 'localhost'): Promise<{ authorized: boolean; error?: string; cert: tls.PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ...(ca ? { ca } : {}), rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const result = { authorized: socket.authorized, error: socket.authorizationError?.toString(), cert: socket.getPeerCertificate() };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

interface CurlResult { version: string; status: number; headers: Record<string, string>; body: Buffer }

/** curl with the CA as its only root; HTTP/2 or HTTP/1.1 as asked (h2 must be negotiated by ALPN, not assumed). */
function curl(url: string, cacert: string, protocol: '--http2' | '--http1.1', args: string[] = []): Promise<CurlResult> {
  const out = path.join(tempDir(), 'body');
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', protocol, '--cacert', cacert, '-D', '-', '-o', out, '-w', '\\n%{http_version}', '--max-time', '30', ...args, url], { encoding: 'utf8', env: { ...process.env, SSL_CERT_FILE: '/nonexistent' } }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`curl ${url}: ${stderr || error.message}`));
      const lines = stdout.trimEnd().split(/\r?\n/);
      const version = lines.pop()!;
      const blocks = lines.join('\n').trim().split(/\n\s*\n/);
      const head = blocks[blocks.length - 1].split('\n');
      const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(head[0])?.[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = readFileSync(out);
      rmSync(path.dirname(out), { recursive: true, force: true });
      resolve({ version, status, headers, body });
    });
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

describe('tls: "auto" serves HTTPS from a local CA, HTTP/2 and HTTP/1.1 alike', { skip: !python ? 'no python3 found' : false, timeout: 180_000 }, () => {
  let home: string;
  let caDir: string;
  let dir: string;
  let server: ServeProcess;
  let env: NodeJS.ProcessEnv;
  let redirectPort: number;
  let root: string;

  before(async () => {
    home = tempDir();
    caDir = path.join(tempDir(), 'ca');
    env = { HOME: home, SERVESTACK_CA_DIR: caDir };
    redirectPort = await freePort();
    dir = site({ tls: 'auto', httpRedirect: `127.0.0.1:${redirectPort}` });
    server = await serve(dir, ['--python', python!], env);
    await server.waitFor(/worker \d+ ready/, 30_000);
    root = readFileSync(path.join(caDir, 'rootCA.pem'), 'utf8');
  });

  after(async () => {
    await server?.stop();
    for (const d of [dir, home, caDir && path.dirname(caDir)]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('prints an https URL and keeps the CA outside the folder, its key readable by the user alone', () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    const keyMode = statSync(path.join(caDir, 'rootCA-key.pem')).mode & 0o777;
    assert.equal(keyMode.toString(8), '600');
    assert.equal((statSync(caDir).mode & 0o077), 0, 'the CA folder is the user\'s alone');
    const inFolder = spawnSync('grep', ['-rl', 'PRIVATE KEY', dir], { encoding: 'utf8' }).stdout.trim();
    assert.equal(inFolder, '', 'no key is written into the served folder');
  });

  it('a client that trusts only the local root accepts the certificate; one that trusts other roots refuses it', async () => {
    const trusting = await handshake(server.port, root);
    assert.equal(trusting.authorized, true, trusting.error);
    const ca = new X509Certificate(root);
    const leaf = new X509Certificate(trusting.cert.raw);
    assert.notEqual(leaf.subject, leaf.issuer, 'the leaf is issued by the CA, not self-signed');
    assert.equal(leaf.issuer, ca.subject);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.equal(leaf.ca, false);
    assert.equal(ca.ca, true);
    for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) assert.ok(leaf.subjectAltName?.includes(name), `${name} in ${leaf.subjectAltName}`);
    const lifeDays = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
    assert.ok(lifeDays > 6 && lifeDays <= 30, `a short-lived leaf (${lifeDays.toFixed(1)} days left)`);

    const withDefaults = await handshake(server.port, undefined);
    assert.equal(withDefaults.authorized, false);
    assert.match(withDefaults.error ?? '', /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER/);
    const otherKeys = await generateKeyPair();
    const otherRoot = await x509().X509CertificateGenerator.createSelfSigned({ serialNumber: randomSerial(), name: 'CN=Some other CA', keys: otherKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [new (x509().BasicConstraintsExtension)(true, 0, true)] });
    const other = await handshake(server.port, otherRoot.toString('pem'));
    assert.equal(other.authorized, false);
  });

  it('curl --http2 negotiates h2; a static file, a Range, a pool route and a stream answer as over HTTP/1.1', { skip: !hasCurlHttp2 ? 'curl has no HTTP/2' : false }, async () => {
    const caFile = path.join(caDir, 'rootCA.pem');
    const base = `https://localhost:${server.port}`;
    const cases: Array<{ url: string; args?: string[]; headers: string[] }> = [
      { url: '/static/blob.bin', headers: ['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges'] },
      { url: '/static/blob.bin', args: ['-H', 'Range: bytes=1000-4999'], headers: ['content-type', 'content-length', 'content-range', 'etag'] },
      { url: '/env?x=1&y=%20', headers: ['content-type', 'content-length'] },
      { url: '/stream', headers: ['content-type'] },
    ];
    for (const c of cases) {
      const h2 = await curl(base + c.url, caFile, '--http2', c.args);
      const h1 = await curl(base + c.url, caFile, '--http1.1', c.args);
      assert.equal(h2.version, '2', `${c.url} over h2`);
      assert.equal(h1.version, '1.1', `${c.url} over http/1.1`);
      assert.equal(h2.status, h1.status, c.url);
      for (const name of c.headers) assert.equal(h2.headers[name], h1.headers[name], `${c.url}: ${name}`);
      if (c.url.startsWith('/env')) {
        // The app sees the same request either way: the host from :authority, the scheme https.
        const seen2 = JSON.parse(h2.body.toString());
        assert.deepEqual(seen2, JSON.parse(h1.body.toString()));
        assert.equal(seen2['wsgi.url_scheme'], 'https');
        assert.equal(seen2.HTTP_X_FORWARDED_PROTO, 'https');
        assert.equal(seen2.HTTP_HOST, `localhost:${server.port}`);
        assert.equal(seen2.QUERY_STRING, 'x=1&y=%20');
      } else {
        assert.equal(sha(h2.body), sha(h1.body), `${c.url}: the same bytes`);
      }
      for (const forbidden of ['connection', 'keep-alive', 'transfer-encoding']) assert.equal(h2.headers[forbidden], undefined, `${c.url}: no ${forbidden} over h2`);
    }
    const range = await curl(`${base}/static/blob.bin`, caFile, '--http2', ['-H', 'Range: bytes=1000-4999']);
    assert.equal(range.status, 206);
    assert.equal(range.body.length, 4000);
    assert.equal(sha(range.body), sha(readFileSync(path.join(dir, 'static', 'blob.bin')).subarray(1000, 5000)));
    const stream = await curl(`${base}/stream`, caFile, '--http2');
    assert.equal(stream.body.toString(), 'part 0\npart 1\npart 2\npart 3\npart 4\n');
    // The access log tells the protocols apart, as NGINX's does.
    await server.waitFor(/"GET \/stream HTTP\/2\.0" 200 35 /);
    await server.waitFor(/"GET \/stream HTTP\/1\.1" 200 35 /);
  });

  it('over one HTTP/2 session: a body over the route\'s limit gets 413 and the session carries on; uploads reach the app whole', async () => {
    const session = http2.connect(`https://localhost:${server.port}`, { ca: root });
    try {
      const ask = (headers: http2.OutgoingHttpHeaders, body?: Buffer) => new Promise<{ status: number; body: Buffer; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        const stream = session.request(headers);
        const chunks: Buffer[] = [];
        let head: http2.IncomingHttpHeaders = {};
        stream.on('response', (h) => void (head = h));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve({ status: Number(head[':status']), body: Buffer.concat(chunks), headers: head }));
        stream.on('error', reject);
        stream.end(body);
      });
      const tooBig = await ask({ ':method': 'POST', ':path': '/echo', 'content-length': String(100 * 1024) }, Buffer.alloc(100 * 1024, 1));
      assert.equal(tooBig.status, 413);
      assert.match(tooBig.body.toString(), /limit of|limit here is/);
      assert.equal(tooBig.headers.connection, undefined);
      const upload = Buffer.alloc(48 * 1024, 7);
      const echoed = await ask({ ':method': 'POST', ':path': '/echo', 'content-type': 'application/octet-stream' }, upload);
      assert.equal(echoed.status, 200);
      assert.deepEqual(JSON.parse(echoed.body.toString()), { length: upload.length, sha256: sha(upload) });
      const after413 = await ask({ ':method': 'GET', ':path': '/static/page.html' });
      assert.equal(after413.status, 200);
      // The same checks as HTTP/1.1: TRACE is refused before any upstream sees it.
      const trace = await ask({ ':method': 'TRACE', ':path': '/' });
      assert.equal(trace.status, 405);
      const connect = await ask({ ':method': 'CONNECT', ':authority': 'example.com:443' });
      assert.equal(connect.status, 405);
      assert.equal((await ask({ ':method': 'GET', ':path': '/static/page.html' })).status, 200, 'the session outlives the refusals');
    } finally {
      session.close();
    }
  });

  it('HTTP/1.1 over TLS is parsed as strictly as plain HTTP: the front answers bad heads with its page', async () => {
    const exchange = (bytes: string) => new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'localhost', ca: root, ALPNProtocols: ['http/1.1'] }, () => {
        assert.equal(socket.alpnProtocol, 'http/1.1');
        socket.write(bytes);
      });
      let text = '';
      socket.on('data', (c) => (text += c.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    const simple = await exchange('GET /static/page.html\r\n');
    assert.match(simple, /^HTTP\/1\.1 400 /);
    assert.match(simple, /HTTP\/0\.9 simple requests are not served/);
    const twoHosts = await exchange('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.match(twoHosts, /^HTTP\/1\.1 400 /);
    assert.match(twoHosts, /2 Host header fields/);
    const connect = await exchange('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.match(connect, /^HTTP\/1\.1 405 /);
    await server.waitFor(/"CONNECT example\.com:443 HTTP\/1\.1" 405 /);
  });

  it('httpRedirect answers plain HTTP with a 308 to the same path and query on HTTPS', async () => {
    const answer = (method: string, host?: string) => new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const socket = net.connect(redirectPort, '127.0.0.1', () => {
        socket.write(`${method} /a/b%20c?x=1&y=2 HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (c) => (text += c.toString('latin1')));
      socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), location: /\r\nLocation: ([^\r]+)/i.exec(text)?.[1] }));
      socket.on('error', reject);
    });
    assert.deepEqual(await answer('GET', `localhost:${redirectPort}`), { status: 308, location: `https://localhost:${server.port}/a/b%20c?x=1&y=2` });
    assert.deepEqual(await answer('POST', `127.0.0.1:${redirectPort}`), { status: 308, location: `https://127.0.0.1:${server.port}/a/b%20c?x=1&y=2` });
    // A Host that is not a host name falls back to the listener's own host.
    assert.deepEqual(await answer('GET', 'bad host/x'), { status: 308, location: `https://127.0.0.1:${server.port}/a/b%20c?x=1&y=2` });
  });

  it('a second server for the same user reuses the CA; the snapshot reports HTTPS and whether it is trusted', async () => {
    const state = readServerState(dir, { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir })!;
    const control = await connectControl({ port: state.controlPort, token: state.token });
    try {
      const https = (await control.request({ type: 'status' })).server.https!;
      assert.equal(https.mode, 'auto');
      assert.equal(https.caFile, path.join(caDir, 'rootCA.pem'));
      assert.equal(https.redirectUrl, `http://127.0.0.1:${redirectPort}/`);
      await eventually(async () => (await control.request({ type: 'status' })).server.https?.trusted === false, 10_000, 'trusted: false');
      // The request inspector's replay reaches this HTTPS listener too.
      const { requests } = await control.request({ type: 'requests' });
      const envRequest = requests.find((r) => r.url.startsWith('/env'));
      assert.ok(envRequest, 'the inspector kept the /env request');
      assert.equal((await control.request({ type: 'replayRequest', request: envRequest.id })).status, 200);
    } finally {
      await control.close();
    }
    const second = site({ tls: 'auto' });
    const other = await serve(second, ['--python', python!], env);
    try {
      assert.equal(readFileSync(path.join(caDir, 'rootCA.pem'), 'utf8'), root, 'the CA was not made again');
      assert.equal((await handshake(other.port, root)).authorized, true);
    } finally {
      await other.stop();
      rmSync(second, { recursive: true, force: true });
    }
  });
});

describe('tls: the certificate renews itself while the server runs', () => {
  it('a new leaf is served after renewal, to new connections, from the same CA', async () => {
    const caDir = path.join(tempDir(), 'ca');
    const folder = tempDir();
    writeFileSync(path.join(folder, 'index.html'), 'hello\n');
    const parsed = parseConfigText(JSON.stringify({ routes: [{ path: '/', static: '.' }] }), path.join(folder, 'servestack.json'), folder);
    const config = parsed.config!;
    const logger = new Logger();
    // A life of 3 s: the renewer issues the next leaf at two thirds of it, by itself.
    const served = await prepareServerTls('auto', { caDir, leafLifetimeMs: 3000 });
    const proxy = new ProxyServer(buildRoutes(config.routes, new Map(), config.limits, logger), logger, Object.assign(() => undefined, {}), TempFiles.forServer(), served.current());
    const renewed = new Promise<void>((resolve) => served.onRenewed((pair) => {
      proxy.setCertificate(pair);
      resolve();
    }));
    try {
      const { port } = await proxy.listen({ host: '127.0.0.1', port: 0, pinned: true });
      const root = readFileSync(path.join(caDir, 'rootCA.pem'), 'utf8');
      const first = await handshake(port, root);
      assert.equal(first.authorized, true, first.error);
      await renewed;
      const next = await handshake(port, root);
      assert.equal(next.authorized, true, next.error);
      assert.notEqual(next.cert.serialNumber, first.cert.serialNumber);
      assert.ok(Date.parse(next.cert.valid_to) >= Date.parse(first.cert.valid_to));
    } finally {
      served.stop();
      await proxy.close(0);
      rmSync(path.dirname(caDir), { recursive: true, force: true });
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('tls: the user\'s own certificate files', { skip: !python ? 'no python3 found' : false, timeout: 120_000 }, () => {
  let dir: string;
  let caPem: string;

  /** A CA and a leaf it issued for localhost, valid from `from` to `to`. */
  async function issue(from: Date, to: Date): Promise<{ cert: string; key: string; ca: string }> {
    const caKeys = await generateKeyPair();
    const ca = await x509().X509CertificateGenerator.createSelfSigned({ serialNumber: randomSerial(), name: 'CN=Test user CA', keys: caKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [new (x509().BasicConstraintsExtension)(true, 0, true), new (x509().KeyUsagesExtension)(x509().KeyUsageFlags.keyCertSign, true)] });
    const keys = await generateKeyPair();
    const leaf = await x509().X509CertificateGenerator.create({
      serialNumber: randomSerial(), subject: 'CN=localhost', issuer: ca.subject, notBefore: from, notAfter: to, publicKey: keys.publicKey, signingKey: caKeys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [new (x509().SubjectAlternativeNameExtension)([{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }])],
    });
    return { cert: leaf.toString('pem'), key: await privateKeyPem(keys.privateKey), ca: ca.toString('pem') };
  }

  before(async () => {
    dir = site({ tls: { cert: 'tls/cert.pem', key: 'tls/key.pem' } });
    mkdirSync(path.join(dir, 'tls'));
    const good = await issue(new Date(Date.now() - 3600_000), new Date(Date.now() + 30 * 86_400_000));
    caPem = good.ca;
    writeFileSync(path.join(dir, 'tls', 'cert.pem'), good.cert);
    writeFileSync(path.join(dir, 'tls', 'key.pem'), good.key);
    const expired = await issue(new Date(Date.now() - 90 * 86_400_000), new Date(Date.now() - 86_400_000));
    writeFileSync(path.join(dir, 'tls', 'expired.pem'), expired.cert);
    writeFileSync(path.join(dir, 'tls', 'expired-key.pem'), expired.key);
    writeFileSync(path.join(dir, 'tls', 'other-key.pem'), (await issue(new Date(), new Date(Date.now() + 86_400_000))).key);
    writeFileSync(path.join(dir, 'tls', 'garbage.pem'), 'not a certificate at all\n');
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with them: a client trusting their CA accepts, and no local CA is made', async () => {
    const caDir = path.join(tempDir(), 'ca');
    const server = await serve(dir, ['--python', python!], { SERVESTACK_CA_DIR: caDir });
    try {
      assert.match(server.url, /^https:/);
      const result = await handshake(server.port, caPem);
      assert.equal(result.authorized, true, result.error);
      assert.equal(result.cert.subject.CN, 'localhost');
      assert.equal(existsSync(caDir), false);
    } finally {
      await server.stop();
      rmSync(path.dirname(caDir), { recursive: true, force: true });
    }
  });

  const badCases: Array<{ name: string; cert: string; key: string; code: string; says: RegExp }> = [
    { name: 'a certificate file that is not PEM', cert: 'tls/garbage.pem', key: 'tls/key.pem', code: 'TLS_CERT_INVALID', says: /certificate file .*garbage\.pem is not a PEM certificate/ },
    { name: 'a key file that holds a certificate', cert: 'tls/cert.pem', key: 'tls/cert.pem', code: 'TLS_KEY_INVALID', says: /key file .*cert\.pem holds a certificate, not a private key/ },
    { name: 'a key that does not match', cert: 'tls/cert.pem', key: 'tls/other-key.pem', code: 'TLS_KEY_MISMATCH', says: /key file .*other-key\.pem does not belong to the certificate .*cert\.pem/ },
    { name: 'an expired certificate', cert: 'tls/expired.pem', key: 'tls/expired-key.pem', code: 'TLS_CERT_EXPIRED', says: /certificate file .*expired\.pem expired on \d{4}-/ },
    { name: 'a missing file', cert: 'tls/nope.pem', key: 'tls/key.pem', code: 'CONFIG_PATH_MISSING', says: /nope\.pem/ },
  ];
  for (const c of badCases) {
    it(`refuses to start with ${c.name}, naming the file [${c.code}]`, () => {
      const bad = site({ tls: { cert: path.join(dir, c.cert), key: path.join(dir, c.key) } });
      try {
        const run = spawnSync(process.execPath, [CLI, 'serve', bad, '--port', '0', '--python', python!], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, SERVESTACK_CA_DIR: path.join(bad, 'no-ca') } });
        assert.equal(run.status, 1, run.stdout + run.stderr);
        assert.match(run.stderr, new RegExp(c.code));
        assert.match(run.stderr, c.says);
        assert.doesNotMatch(run.stdout, /serving .* at https/);
      } finally {
        rmSync(bad, { recursive: true, force: true });
      }
    });
  }
});

describe('trust: `servestack trust` adds the root to an NSS database, and chromium then loads the page', {
  skip: !python ? 'no python3 found' : !hasCertutil ? 'no certutil (apt-get install libnss3-tools)' : !existsSync(CHROMIUM) ? `no chromium at ${CHROMIUM}` : false,
  timeout: 180_000,
}, () => {
  let home: string;
  let caDir: string;
  let dir: string;
  let server: ServeProcess;
  let env: NodeJS.ProcessEnv;

  const cli = (verb: string) => spawnSync(process.execPath, [CLI, verb], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  /** Loads the page in a fresh headless chromium whose HOME (and so ~/.pki/nssdb) is the temp one. */
  async function load(url: string): Promise<{ error?: string; text?: string; protocol?: string }> {
    const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'], env: { ...process.env, HOME: home } });
    try {
      const page = await browser.newPage();
      try {
        await page.goto(url);
      } catch (error) {
        return { error: (error as Error).message.split('\n')[0] };
      }
      /* eslint-disable-next-line @typescript-eslint/no-explicit-any -- the page's globals */
      const protocol = await page.evaluate(() => ((globalThis as any).performance.getEntriesByType('navigation')[0] as { nextHopProtocol: string }).nextHopProtocol);
      return { text: await page.textContent('#ok'), protocol };
    } finally {
      await browser.close();
    }
  }

  before(async () => {
    home = tempDir();
    caDir = path.join(tempDir(), 'ca');
    env = { HOME: home, SERVESTACK_CA_DIR: caDir };
    // A Firefox profile as Firefox leaves it: a folder under ~/.mozilla/firefox with an NSS database.
    const profile = path.join(home, '.mozilla', 'firefox', 'abcd1234.default-release');
    mkdirSync(profile, { recursive: true });
    assert.equal(spawnSync('certutil', ['-N', '-d', `sql:${profile}`, '--empty-password']).status, 0);
    dir = site({ tls: 'auto' });
    server = await serve(dir, ['--python', python!], env);
  });

  after(async () => {
    await server?.stop();
    for (const d of [dir, home, caDir && path.dirname(caDir)]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('before trust, chromium refuses the certificate', async () => {
    const result = await load(`https://localhost:${server.port}/static/page.html`);
    assert.match(result.error ?? '', /ERR_CERT_AUTHORITY_INVALID/);
  });

  it('trust explains itself, makes ~/.pki/nssdb, adds the root; chromium then loads the page over h2 with no certificate error', async () => {
    const run = cli('trust');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /local certificate authority/);
    assert.match(run.stdout, /never share or commit it/);
    assert.match(run.stdout, /Chromium and Chrome \(~\/\.pki\/nssdb\): added/);
    assert.match(run.stdout, /Firefox profile abcd1234\.default-release \(~\/\.mozilla\/firefox\/abcd1234\.default-release\): added/);
    const inFirefox = spawnSync('certutil', ['-L', '-d', `sql:${path.join(home, '.mozilla', 'firefox', 'abcd1234.default-release')}`], { encoding: 'utf8' });
    assert.match(inFirefox.stdout, /ServeStack local CA [0-9a-f]{16}\s+C,,/);
    assert.ok(existsSync(path.join(home, '.pki', 'nssdb', 'cert9.db')));
    const listed = spawnSync('certutil', ['-L', '-d', `sql:${path.join(home, '.pki', 'nssdb')}`], { encoding: 'utf8' });
    assert.match(listed.stdout, /ServeStack local CA [0-9a-f]{16}\s+C,,/);
    assert.match(cli('trust').stdout, /already trusted/);

    const result = await load(`https://localhost:${server.port}/static/page.html`);
    assert.equal(result.error, undefined);
    assert.equal(result.text, 'served over HTTPS');
    assert.equal(result.protocol, 'h2');

    // The server notices: its snapshot says trusted (the Workers view drops "HTTPS not trusted yet").
    const state = readServerState(dir, { ...process.env, XDG_RUNTIME_DIR: server.runtimeDir })!;
    const control = await connectControl({ port: state.controlPort, token: state.token });
    try {
      await eventually(async () => (await control.request({ type: 'status' })).server.https?.trusted === true, 45_000, 'trusted: true');
    } finally {
      await control.close();
    }
  });

  it('untrust removes it again, and chromium refuses once more', async () => {
    const run = cli('untrust');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /~\/\.pki\/nssdb\): removed/);
    assert.match(run.stdout, /abcd1234\.default-release\): removed/);
    const result = await load(`https://localhost:${server.port}/static/page.html`);
    assert.match(result.error ?? '', /ERR_CERT_AUTHORITY_INVALID/);
  });
});
