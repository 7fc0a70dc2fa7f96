// Buffering both ways, as NGINX does for Gunicorn: a worker's time is the app's time,
// never the client's. Real server, real Python workers, raw and http clients on 127.0.0.1.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, eventually, findPython, request, serve, tempCopy, type ServeProcess } from './harness';

const python = findPython();
const APP = path.join(ROOT, 'test', 'fixtures', 'apps', 'buffering');
const CHUNK = 65536;

function pattern(i: number): Buffer {
  return Buffer.from(String(i).padStart(8, '0').repeat(CHUNK / 8));
}
function expectedSha(mib: number): string {
  const hash = createHash('sha256');
  for (let i = 0; i < mib * 16; i++) hash.update(pattern(i));
  return hash.digest('hex');
}

interface Served {
  server: ServeProcess;
  dir: string;
  log: string;
  /** Lines the app wrote as it started each request: "METHOD PATH QUERY PID". */
  requests(): string[];
  tempDir: string;
  close(): Promise<void>;
}

async function serveApp(config: Record<string, unknown>): Promise<Served> {
  const dir = tempCopy(APP);
  const log = path.join(dir, 'requests.log');
  writeFileSync(log, '');
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify(config));
  const server = await serve(dir, ['--python', python!], { REQUEST_LOG: log });
  const workers = (config.pools as { web: { workers?: number } }).web.workers ?? 1;
  await server.waitFor(new RegExp(Array(workers).fill('worker \\d+ ready').join('[\\s\\S]*')));
  return {
    server,
    dir,
    log,
    requests: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
    tempDir: path.join(server.runtimeDir, 'servestack', 'tmp'),
    close: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Open descriptors of the server process that point into its temp folder (unlinked files included). */
function tempFds(served: Served): number {
  const fdDir = `/proc/${served.server.child.pid}/fd`;
  let count = 0;
  for (const fd of readdirSync(fdDir)) {
    try {
      if (readlinkSync(path.join(fdDir, fd)).startsWith(served.tempDir)) count++;
    } catch {
      // closed while we looked
    }
  }
  return count;
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

interface Download {
  status: number;
  length: number;
  sha256: string;
  complete: boolean;
}

/** GET that hashes the body; `hold` pauses reading after the first chunk until it resolves. */
function download(url: string, hold?: () => Promise<unknown>): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      let held = false;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        if (hold && !held) {
          held = true;
          res.pause();
          void hold().then(() => res.resume(), reject);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length, sha256: hash.digest('hex'), complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, length, sha256: hash.digest('hex'), complete: false }));
    });
    req.on('error', reject);
  });
}

function json<T = Record<string, unknown>>(reply: { text: string }): T {
  return JSON.parse(reply.text) as T;
}

const POOL = (workers: number, extra: Record<string, unknown> = {}) => ({ web: { app: 'app:application', workers, timeout: '5s', ...extra } });

describe('response buffering', { skip: python ? false : 'no python3 found' }, () => {
  test('50 downloads of an 8 MiB generated answer arrive whole, and no worker is killed', async () => {
    const served = await serveApp({ pools: POOL(2), routes: [{ path: '/', pool: 'web' }] });
    try {
      const want = expectedSha(8);
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(Array.from({ length: 5 }, () => download(served.server.url + 'big?mib=8')));
        for (const r of results) {
          assert.equal(r.status, 200);
          assert.equal(r.length, 8 * 1024 * 1024);
          assert.equal(r.sha256, want);
        }
      }
      assert.doesNotMatch(served.server.output(), /past the pool's timeout|killing|exited before/);
    } finally {
      await served.close();
    }
  });

  test('a 256 MiB answer to a client that waits goes to a temp file: the worker is free, memory stays bounded, the bytes arrive whole', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      let spilled = 0;
      let servedMeanwhile = 0;
      const result = await download(served.server.url + 'big?mib=256', async () => {
        // While this client reads nothing, the one worker finishes and serves others.
        await eventually(async () => json<{ done: boolean }>(await request(served.server.url + 'progress')).done, 20000, 'the app to finish producing');
        spilled = tempFds(served);
        for (let i = 0; i < 5; i++) if ((await request(served.server.url + 'info')).status === 200) servedMeanwhile++;
        // Longer than the pool's 5 s timeout: a worker held by this client would be killed.
        await new Promise((r) => setTimeout(r, 6000));
      });
      assert.equal(result.status, 200);
      assert.equal(result.length, 256 * 1024 * 1024);
      assert.equal(result.sha256, expectedSha(256));
      assert.ok(spilled >= 1, 'the answer was held in a temp file');
      assert.equal(servedMeanwhile, 5);
      const peak = peakRssMiB(served.server.child.pid!);
      assert.ok(peak < 200, `the server's peak RSS was ${peak.toFixed(0)} MiB for a 256 MiB answer`);
      assert.doesNotMatch(served.server.output(), /past the pool's timeout|killing/);
      await eventually(() => tempFds(served) === 0, 5000, 'the temp file to be closed');
    } finally {
      await served.close();
    }
  });

  test('a client that leaves mid-download leaves no temp file and a free worker', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(served.server.url + 'big?mib=64', { agent: false }, (res) => {
          res.once('data', () => {
            res.pause();
            eventually(() => tempFds(served) > 0, 10000, 'the answer to spill to a temp file').then(() => {
              req.destroy();
              resolve();
            }, reject);
          });
        });
        req.on('error', () => undefined);
      });
      await eventually(() => tempFds(served) === 0, 10000, 'the temp file to be closed');
      assert.equal(readdirSync(served.tempDir).length, 0, 'no file is left in the temp folder');
      const info = await request(served.server.url + 'info');
      assert.equal(info.status, 200);
      const line = await eventually(() => /"GET \/big\?mib=64 HTTP\/1\.1" 499 (\d+)/.exec(served.server.output()), 5000, 'a 499 access line');
      // Logged with what the client could have read (NGINX's $body_bytes_sent), not the answer's size.
      assert.ok(Number(line[1]) < 64 * 1024 * 1024, `logged ${line[1]} bytes`);
    } finally {
      await served.close();
    }
  });

  test('a large answer the app returned whole (32 MiB: 256 KiB chunks from the worker) waits for a slow client in the temp file, and is logged with what left', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      const want = expectedSha(32);
      const fast = await download(served.server.url + 'whole?mib=32');
      assert.deepEqual([fast.status, fast.length, fast.sha256], [200, 32 * 1024 * 1024, want]);
      let spilled = 0;
      const slow = await download(served.server.url + 'whole?mib=32', async () => {
        await eventually(() => tempFds(served) > 0, 5000, 'the rest of the answer to move to a temp file');
        spilled = tempFds(served);
      });
      assert.equal(spilled, 1);
      assert.deepEqual([slow.status, slow.length, slow.sha256], [200, 32 * 1024 * 1024, want]);
      await eventually(() => tempFds(served) === 0, 5000, 'the temp file to be closed');
      // A client that leaves after its first bytes: 499, with what left for it, not the answer's size.
      await new Promise<void>((resolve) => {
        const req = http.get(served.server.url + 'whole?mib=32&left=1', { agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
      });
      const line = await eventually(() => /"GET \/whole\?mib=32&left=1 HTTP\/1\.1" (\d+) (\d+)/.exec(served.server.output()), 5000, 'the access line of the client that left');
      assert.equal(line[1], '499');
      assert.ok(Number(line[2]) < 32 * 1024 * 1024, `logged ${line[2]} bytes`);
      await eventually(() => tempFds(served) === 0, 5000, 'no temp file left open');
    } finally {
      await served.close();
    }
  });

  test('with both buffers full the app is held back, then resumed: the answer still arrives whole', async () => {
    // No temp file and a small memory buffer: the last resort, a Pause frame, then its Resume.
    const served = await serveApp({ pools: POOL(1, { threads: 2, timeout: '60s' }), routes: [{ path: '/', pool: 'web' }], limits: { bufferSize: '128k', maxTempFileSize: 0 } });
    try {
      let produced = 0;
      const result = await download(served.server.url + 'big?mib=32', async () => {
        await new Promise((r) => setTimeout(r, 1500));
        produced = json<{ chunks: number }>(await request(served.server.url + 'progress')).chunks;
      });
      // 512 chunks exist; while the client read nothing only what the buffers and sockets hold was produced.
      assert.ok(produced < 256, `the app produced ${produced} of 512 chunks while the client read nothing`);
      assert.equal(result.length, 32 * 1024 * 1024);
      assert.equal(result.sha256, expectedSha(32));
      assert.equal(json<{ done: boolean }>(await request(served.server.url + 'progress')).done, true);
    } finally {
      await served.close();
    }
  });

  for (const framing of ['Content-Length', 'chunked']) {
    test(`an answer (${framing}) whose worker dies midway is cut, never ended cleanly`, async () => {
      // Two threads: /progress is answered while the download runs.
      const served = await serveApp({ pools: POOL(1, { threads: 2 }), routes: [{ path: '/', pool: 'web' }] });
      try {
        const pending = download(served.server.url + `big?mib=4&pace=0.05&length=${framing === 'chunked' ? 'no' : 'yes'}`);
        const line = await eventually(() => served.requests().find((l) => l.startsWith('GET /big')), 10000, 'the download to start');
        await eventually(async () => json<{ chunks: number }>(await request(served.server.url + 'progress')).chunks > 3, 10000, 'a few chunks');
        process.kill(Number(line.split(' ').pop()), 'SIGKILL');
        const result = await pending;
        assert.equal(result.status, 200);
        assert.equal(result.complete, false, 'the client can tell the answer is incomplete');
        assert.ok(result.length < 4 * 1024 * 1024);
      } finally {
        await served.close();
      }
    });
  }

  test('a server killed with -9 while it holds an answer in a temp file leaves no file behind', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      let spilled = 0;
      await new Promise<void>((resolve) => {
        const req = http.get(served.server.url + 'big?mib=64', { agent: false }, (res) => {
          res.once('data', () => {
            res.pause();
            void eventually(() => tempFds(served), 10000, 'a temp file').then((n) => {
              spilled = n;
              served.server.child.kill('SIGKILL');
              resolve();
            });
          });
        });
        req.on('error', () => undefined);
      });
      const child = served.server.child;
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
      assert.ok(spilled > 0);
      assert.deepEqual(readdirSync(served.tempDir), []);
    } finally {
      await served.close();
    }
  });

  test('a streamed answer still reaches the client in parts', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      const arrivals: number[] = [];
      await new Promise<void>((resolve, reject) => {
        http.get(served.server.url + 'stream', { agent: false }, (res) => {
          res.on('data', () => arrivals.push(Date.now()));
          res.on('end', resolve);
        }).on('error', reject);
      });
      assert.ok(arrivals.length >= 3, `the answer came in ${arrivals.length} part(s)`);
    } finally {
      await served.close();
    }
  });
});

/** A raw connection: write bytes when you like, read all that comes back until it closes. */
function rawConnection(port: number): { socket: net.Socket; write(text: string | Buffer): void; received: () => string; closed: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(text)));
  return { socket, write: (data) => void socket.write(data), received: () => text, closed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('request buffering', { skip: python ? false : 'no python3 found' }, () => {
  test('a slow upload never holds a sync worker: the app sees the request only once its body is whole', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      const body = 'abcdefghijklmnopqrst';
      const conn = rawConnection(served.server.port);
      conn.write(`POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < body.length - 1; i++) {
        conn.write(body[i]);
        await sleep(50);
      }
      // The one worker is free while the upload trickles in.
      assert.equal((await request(served.server.url + 'info')).status, 200);
      assert.ok(!served.requests().some((line) => line.startsWith('POST')), 'the app saw the POST before its body was whole');
      conn.write(body[body.length - 1]);
      const reply = await conn.closed;
      assert.match(reply, /^HTTP\/1\.1 200/);
      const answer = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { length: number; sha256: string; content_length: string };
      assert.equal(answer.length, body.length);
      assert.equal(answer.sha256, createHash('sha256').update(body).digest('hex'));
      assert.equal(answer.content_length, String(body.length));
    } finally {
      await served.close();
    }
  });

  test('6 clients that never read and 12 one-byte-a-second uploads do not stop normal requests, and no worker is killed', async () => {
    const served = await serveApp({ pools: POOL(2), routes: [{ path: '/', pool: 'web' }] });
    const conns: Array<ReturnType<typeof rawConnection>> = [];
    try {
      for (let i = 0; i < 6; i++) {
        const c = rawConnection(served.server.port);
        c.socket.pause(); // never reads its 4 MiB
        c.write('GET /big?mib=4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        conns.push(c);
      }
      const uploads = Array.from({ length: 12 }, () => {
        const c = rawConnection(served.server.port);
        c.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n');
        conns.push(c);
        return c;
      });
      const started = Date.now();
      let ok = 0;
      let tries = 0;
      // Past the pool's 5 s timeout, so a worker held by any of them would have been killed.
      while (Date.now() - started < 6000) {
        for (const u of uploads) u.write('x');
        tries++;
        if ((await request(served.server.url + 'info')).status === 200) ok++;
        await sleep(300);
      }
      assert.equal(ok, tries);
      assert.ok(tries >= 15, `${tries} normal requests`);
      assert.doesNotMatch(served.server.output(), /past the pool's timeout|killing|no heartbeat/);
      assert.ok(!served.requests().some((line) => line.startsWith('POST')), 'no unfinished upload reached the app');
    } finally {
      for (const c of conns) c.socket.destroy();
      await served.close();
    }
  });

  test('a body cut short by the client is never dispatched', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      const conn = rawConnection(served.server.port);
      conn.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789');
      await sleep(200);
      conn.socket.destroy();
      await eventually(() => /"POST \/echo HTTP\/1\.1" 400/.test(served.server.output()), 5000, 'the access line of the cut request (400, as NGINX logs a body the client cut short)');
      assert.equal((await request(served.server.url + 'info')).status, 200);
      assert.deepEqual(served.requests().map((line) => line.split(' ')[0]), ['GET']);
    } finally {
      await served.close();
    }
  });

  test('a chunked body with broken framing gets 400 and never reaches the app', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web' }] });
    try {
      const conn = rawConnection(served.server.port);
      conn.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n');
      assert.match(await conn.closed, /^HTTP\/1\.1 400/);
      await eventually(() => /"POST \/echo HTTP\/1\.1" 400/.test(served.server.output()), 5000, 'its access line');
      assert.equal((await request(served.server.url + 'info')).status, 200);
      assert.deepEqual(served.requests().map((line) => line.split(' ')[0]), ['GET']);
    } finally {
      await served.close();
    }
  });

  test('a chunked body over the limit gets 413 and never reaches the app', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web', maxBodySize: '1k' }] });
    try {
      const conn = rawConnection(served.server.port);
      const chunk = 'y'.repeat(512);
      conn.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 4; i++) conn.write(`200\r\n${chunk}\r\n`);
      conn.write('0\r\n\r\n');
      const reply = await conn.closed;
      assert.match(reply, /^HTTP\/1\.1 413/);
      assert.deepEqual(served.requests(), []);
    } finally {
      await served.close();
    }
  });

  test('Expect: 100-continue gets 413 without a 100 for a declared body over the limit, and 100 then the answer under it', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/', pool: 'web', maxBodySize: '1k' }] });
    try {
      const over = rawConnection(served.server.port);
      over.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
      const refused = await over.closed;
      assert.match(refused, /^HTTP\/1\.1 413/);
      assert.doesNotMatch(refused, /100 Continue/);

      const under = rawConnection(served.server.port);
      under.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
      await eventually(() => under.received().startsWith('HTTP/1.1 100 Continue'), 5000, '100 Continue');
      under.write('hello');
      const answered = await under.closed;
      assert.match(answered, /HTTP\/1\.1 200 OK/);
      assert.match(answered, /"length": 5/);
      assert.deepEqual(served.requests().map((line) => line.split(' ').slice(0, 2).join(' ')), ['POST /echo']);
    } finally {
      await served.close();
    }
  });

  test('a route with requestBuffering off hands the body to the app as it arrives', async () => {
    const served = await serveApp({ pools: POOL(1), routes: [{ path: '/live/', pool: 'web', requestBuffering: false }, { path: '/', pool: 'web' }] });
    try {
      const conn = rawConnection(served.server.port);
      conn.write('POST /live/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n01234');
      await eventually(() => served.requests().some((line) => line.startsWith('POST /live/echo')), 5000, 'the app to start the streamed request');
      conn.write('56789');
      const reply = await conn.closed;
      assert.match(reply, /^HTTP\/1\.1 200/);
      assert.match(reply, /"length": 10/);
    } finally {
      await served.close();
    }
  });
});

describe('a worker lost mid-request', { skip: python ? false : 'no python3 found' }, () => {
  async function killWorkerRunning(served: Served, what: string): Promise<number> {
    const line = await eventually(() => served.requests().find((l) => l.includes(what)), 10000, `the app to start ${what}`);
    const pid = Number(line.split(' ').pop());
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  test('a GET whose worker is killed before it answers is retried once on another worker', async () => {
    const served = await serveApp({ pools: POOL(2), routes: [{ path: '/', pool: 'web' }] });
    try {
      const pending = request(served.server.url + 'sleep?s=2');
      const killed = await killWorkerRunning(served, '/sleep');
      const reply = await pending;
      assert.equal(reply.status, 200);
      assert.notEqual(json<{ pid: number }>(reply).pid, killed);
      assert.equal(served.requests().filter((l) => l.includes('/sleep')).length, 2);
    } finally {
      await served.close();
    }
  });

  test('a POST whose worker is killed gets 502 and is never run again', async () => {
    const served = await serveApp({ pools: POOL(2), routes: [{ path: '/', pool: 'web' }] });
    try {
      const pending = request(served.server.url + 'sleep?s=2', { method: 'POST', body: 'x' });
      await killWorkerRunning(served, '/sleep');
      assert.equal((await pending).status, 502);
      assert.equal(served.requests().filter((l) => l.includes('/sleep')).length, 1);
    } finally {
      await served.close();
    }
  });

  test('a request that kills a second worker too gets 502, and the pool serves on', async () => {
    const served = await serveApp({ pools: POOL(2), routes: [{ path: '/', pool: 'web' }] });
    try {
      assert.equal((await request(served.server.url + 'die')).status, 502);
      assert.equal(served.requests().filter((l) => l.includes('/die')).length, 2);
      await eventually(async () => (await request(served.server.url + 'info')).status === 200, 10000, 'the pool to serve again');
    } finally {
      await served.close();
    }
  });
});
