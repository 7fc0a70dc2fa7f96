// `servestack export` and `servestack import` through the CLI, checked by the real tools:
// `nginx -t` and `gunicorn --check-config` accept every export; two local Gunicorn
// instances behind the exported NGINX share the requests; import → export → import is stable.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findPython, request, ROOT, tempCopy, tempDir } from './harness';
import { exportTo, freePort, gunicornCheck, nginxTest, productionMissing, readLog, runCli, startGunicorn, startNginx, type Started } from './production';

const missing = productionMissing() ?? (findPython(['flask', 'fastapi', 'uvicorn']) === '/usr/bin/python3' ? undefined : '/usr/bin/python3 lacks flask, fastapi or uvicorn');
if (missing) console.log(`# skipping the export tool checks: ${missing}`);

const EXAMPLES = [
  path.join(ROOT, 'examples', 'hello'),
  path.join(ROOT, 'examples', 'flask-app'),
  path.join(ROOT, 'test', 'fixtures', 'apps', 'fastapi-app'),
];

function gunicornFiles(out: string): string[] {
  return readdirSync(out).filter((f) => /^gunicorn(\..+)?\.conf\.py$/.test(f));
}

/** A folder whose servestack.json sets every field, most away from its default. */
function everyFieldProject(): string {
  const dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
  cpSync(path.join(ROOT, 'test', 'fixtures', 'apps', 'fastapi-app', 'main.py'), path.join(dir, 'api.py'));
  writeFileSync(path.join(dir, '.env.production'), 'GREETING="hello there"\nexport LEVEL=3 # a comment\nnot a line\n');
  mkdirSync(path.join(dir, 'tls'));
  const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-keyout', path.join(dir, 'tls', 'key.pem'), '-out', path.join(dir, 'tls', 'cert.pem')], { encoding: 'utf8' });
  assert.equal(cert.status, 0, cert.stderr);
  writeFileSync(path.join(dir, 'servestack.json'), JSON.stringify({
    listen: '127.0.0.1:18443',
    tls: { cert: 'tls/cert.pem', key: 'tls/key.pem' },
    pools: {
      web: { app: 'app:app', interface: 'wsgi', python: '/usr/bin/python3', workers: 3, threads: 4, timeout: '45s', maxRequests: 500, reload: true, env: { GREETING: 'hi', FLASK_DEBUG: '1' }, envFile: '.env.production' },
      api: { app: 'api:app', interface: 'asgi', workers: 1, timeout: 0 },
      vite: { command: 'python3 -m http.server $PORT --bind 127.0.0.1', env: { NODE_ENV: 'development' }, timeout: '90s' },
    },
    routes: [
      { path: '/static/', static: 'static' },
      { path: '/api/', pool: 'api', rateLimit: '100/h', requestBuffering: true },
      { path: '/upload/', pool: 'web', maxBodySize: 0, requestBuffering: false },
      { path: '/vite/', pool: 'vite' },
      { path: '/socket/', proxy: 'ws://127.0.0.1:5173/socket/' },
      { path: '/login', pool: 'web', rateLimit: '5/m', maxBodySize: '64k' },
      { path: '/', pool: 'web' },
    ],
    limits: { maxBodySize: '20m', maxHeaderSize: '32k', headerTimeout: '15s', queueSize: 16, maxHeaderCount: 60, bufferSize: '512k', maxTempFileSize: 0 },
  }, null, 2));
  return dir;
}

describe('servestack export: the real tools accept what it writes', { skip: missing }, () => {
  const dirs: string[] = [];
  after(() => {
    // temp folders are left to the OS; nothing runs in them any more
  });

  for (const example of EXAMPLES) {
    test(`nginx -t and gunicorn --check-config accept the export of ${path.relative(ROOT, example)}`, () => {
      const dir = tempCopy(example);
      dirs.push(dir);
      const out = path.join(dir, 'deploy');
      exportTo(dir, out);
      const n = nginxTest(out);
      assert.ok(n.ok, n.output);
      const confs = gunicornFiles(out);
      assert.ok(confs.length >= 1);
      for (const conf of confs) {
        const g = gunicornCheck(dir, path.join(out, conf));
        assert.ok(g.ok, `${conf}: ${g.output}`);
      }
    });
  }

  test('a config that sets every field: nginx -t, gunicorn --check-config (gthread, Uvicorn), and the warnings', () => {
    const dir = everyFieldProject();
    const out = path.join(dir, 'deploy');
    const stdout = exportTo(dir, out);
    const n = nginxTest(out);
    assert.ok(n.ok, n.output);
    assert.deepEqual(gunicornFiles(out).sort(), ['gunicorn.api.conf.py', 'gunicorn.web.conf.py']);
    for (const conf of gunicornFiles(out)) {
      const g = gunicornCheck(dir, path.join(out, conf));
      assert.ok(g.ok, `${conf}: ${g.output}`);
    }
    const web = readFileSync(path.join(out, 'gunicorn.web.conf.py'), 'utf8');
    assert.match(web, /^worker_class = "gthread"/m);
    assert.match(web, /^threads = 4/m);
    assert.match(readFileSync(path.join(out, 'gunicorn.api.conf.py'), 'utf8'), /^worker_class = "uvicorn\.workers\.UvicornWorker"/m);
    const unit = readFileSync(path.join(out, 'systemd', 'servestack-command-vite.service'), 'utf8');
    assert.match(unit, /^Environment=PORT=8002$/m);
    assert.match(unit, /^ExecStart=\/bin\/sh -c "python3 -m http\.server \$\$PORT --bind 127\.0\.0\.1"$/m);
    for (const code of ['EXPORT_RELOAD', 'EXPORT_DEBUG', 'EXPORT_RATE_LIMIT', 'EXPORT_HEADER_COUNT', 'EXPORT_QUEUE_SIZE', 'EXPORT_NO_TIMEOUT', 'EXPORT_WEBSOCKET']) {
      assert.match(stdout, new RegExp(`servestack\\.json: warning: .*\\[${code}\\]`), code);
    }
    assert.match(stdout, /routes\[1\]\.rateLimit: .*enforces 2r\/m/);
    const readme = readFileSync(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /\[EXPORT_QUEUE_SIZE\]/);
    assert.match(readme, /certbot/);
  });

  test('the envFile is read by gunicorn.conf.py as ServeStack reads it, and env wins', () => {
    const dir = everyFieldProject();
    const out = path.join(dir, 'deploy');
    exportTo(dir, out);
    const probe = spawnSync('/usr/bin/python3', ['-c', [
      'import os, runpy',
      `runpy.run_path(${JSON.stringify(path.join(out, 'gunicorn.web.conf.py'))})`,
      'print(os.environ.get("GREETING"), os.environ.get("LEVEL"))',
    ].join('\n')], { encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    assert.equal(probe.stdout.trim(), 'hello there 3', 'the env file, quotes and comments as ServeStack reads them');
    assert.match(readFileSync(path.join(out, 'gunicorn.web.conf.py'), 'utf8'), /^raw_env = \["GREETING=hi", "FLASK_DEBUG=1"\]/m, 'env, applied after the file');
  });

  test('--hosts with two local Gunicorn instances: NGINX spreads requests over both', async () => {
    const dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    const out = path.join(dir, 'deploy');
    const [port, a, b] = [await freePort(), await freePort(), await freePort()];
    exportTo(dir, out, ['--port', String(port), '--hosts', `127.0.0.1:${a},127.0.0.1:${b}`]);
    const conf = readFileSync(path.join(out, 'nginx.conf'), 'utf8');
    assert.match(conf, new RegExp(`upstream web \\{[^}]*?server 127\\.0\\.0\\.1:${a};\\s*server 127\\.0\\.0\\.1:${b};`));
    let first: Started | undefined;
    let second: Started | undefined;
    let nginx: Started | undefined;
    try {
      first = await startGunicorn(dir, path.join(out, 'gunicorn.conf.py'), a);
      second = await startGunicorn(dir, path.join(out, 'gunicorn.conf.py'), b, `127.0.0.1:${b}`);
      nginx = await startNginx(out, port);
      const masters = new Map<number, number>(); // gunicorn master pid → requests served
      for (let i = 0; i < 12; i++) {
        const r = await request(`http://127.0.0.1:${port}/api/whoami`);
        assert.equal(r.status, 200, r.text);
        const pid = (JSON.parse(r.text) as { pid: number }).pid;
        const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
        masters.set(ppid, (masters.get(ppid) ?? 0) + 1);
      }
      assert.deepEqual([...masters.keys()].sort(), [first.child.pid, second.child.pid].sort(), 'both instances served requests');
      assert.ok([...masters.values()].every((n) => n >= 3), `round robin: ${[...masters.values()]}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${readLog(out)}`);
    } finally {
      await nginx?.stop();
      await second?.stop();
      await first?.stop();
    }
  });
});

describe('servestack import', () => {
  let work: string;
  before(() => {
    work = tempDir();
  });

  function importTo(conf: string, out: string): { code: number | null; stdout: string; stderr: string; json?: unknown } {
    const r = runCli(['import', conf, '--out', out, '--force']);
    const file = path.join(out, 'servestack.json');
    const json = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8').replace(/^\/\/.*\n/, '')) : undefined;
    return { ...r, json };
  }

  for (const source of [...EXAMPLES.slice(0, 2), 'every field']) {
    test(`import → export → import round-trips (${typeof source === 'string' && source !== 'every field' ? path.relative(ROOT, source) : source})`, () => {
      const dir = source === 'every field' ? everyFieldProject() : tempCopy(source);
      const first = path.join(dir, 'deploy1');
      exportTo(dir, first);
      // The project gets the imported config; the export's gunicorn.conf.py files give the pools back.
      const a = importTo(path.join(first, 'nginx.conf'), dir);
      assert.equal(a.code, 0, a.stderr + a.stdout);
      assert.doesNotMatch(a.stdout, /IMPORT_UNSUPPORTED/, 'an export imports without a directive left over');
      const check = runCli(['check', dir]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      const second = path.join(dir, 'deploy2');
      exportTo(dir, second);
      const b = importTo(path.join(second, 'nginx.conf'), dir);
      assert.equal(b.code, 0, b.stderr);
      assert.deepEqual(b.json, a.json);
    });
  }

  test('the first import keeps the routes, pools and limits of the original config', () => {
    const dir = tempCopy(path.join(ROOT, 'examples', 'hello'));
    exportTo(dir, path.join(dir, 'deploy'));
    const r = importTo(path.join(dir, 'deploy', 'nginx.conf'), dir);
    assert.deepEqual(r.json, {
      listen: '127.0.0.1:8080',
      pools: { web: { app: 'app:application' } },
      routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }],
    });
  });

  test('a hand-written nginx.conf: what it can carry over, and each unknown directive with its line', () => {
    const dir = tempCopy(path.join(ROOT, 'examples', 'flask-app'));
    const conf = path.join(work, 'site.conf');
    writeFileSync(conf, [
      'upstream app_server {',
      '    server 127.0.0.1:8000 fail_timeout=0;',
      '}',
      'server {',
      '    listen 8081;',
      '    client_max_body_size 4G;',
      '    root /var/www/site;',
      '    location /static/ {',
      `        alias ${path.join(dir, 'static')}/;`,
      '    }',
      '    location /api/ {',
      '        proxy_pass http://app_server;',
      '        client_max_body_size 10m;',
      '    }',
      '    location /old {',
      '        return 301 /new;',
      '    }',
      '    location /vite/ {',
      '        proxy_pass http://127.0.0.1:5173;',
      '        rewrite ^/vite/(.*)$ /$1 break;',
      '    }',
      '    gzip on;',
      '}',
      '',
    ].join('\n'));
    const r = importTo(conf, dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /site\.conf:16:9: warning: "return 301 \/new" is a return.*\[IMPORT_UNSUPPORTED\]/);
    assert.match(r.stdout, /site\.conf:20:9: warning: "rewrite \^\/vite\/\(\.\*\)\$ \/\$1 break" ServeStack has no equivalent.*\[IMPORT_UNSUPPORTED\]/);
    // gzip is carried over now: ServeStack compresses on the fly by default, so nothing to write and nothing to warn.
    assert.doesNotMatch(r.stdout, /"gzip on"/);
    assert.deepEqual(r.json, {
      listen: 8081,
      pools: { app_server: { app: 'app:app' } },
      routes: [
        { path: '/static/', static: 'static' },
        { path: '/api/', pool: 'app_server', maxBodySize: '10m' },
        { path: '/vite/', proxy: 'http://127.0.0.1:5173' },
        { path: '/', static: '/var/www/site' },
      ],
      limits: { maxBodySize: '4g' },
    });
  });

  test('a file that is not NGINX syntax: an error with its line, and nothing written', () => {
    const dir = tempDir();
    const conf = path.join(work, 'broken.conf');
    writeFileSync(conf, 'server {\n    listen 8080\n}\n');
    const r = importTo(conf, dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.conf:2:5: error: directive "listen" has no ending ";".*\[IMPORT_SYNTAX\]/);
    assert.equal(existsSync(path.join(dir, 'servestack.json')), false);
  });
});

describe('servestack export: usage and failures', () => {
  test('without --out: a usage error (exit 2)', () => {
    const r = runCli(['export', path.join(ROOT, 'examples', 'hello')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs --out OUT/);
    assert.match(r.stderr, /servestack export \[DIR\] --out OUT/, 'the usage lists export');
    assert.match(r.stderr, /servestack import NGINX\.CONF/, 'and import');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const commandLine = readme.slice(readme.indexOf('## Command line'), readme.indexOf('## Configuration'));
    assert.match(commandLine, /servestack export \[DIR\] --out OUT/);
    assert.match(commandLine, /servestack import NGINX\.CONF/);
  });

  test('a config with errors is not exported (exit 1), and says why', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'servestack.json'), '{ "pools": { "web": { "app": "app:app", "workers": 0 } } }');
    const out = path.join(dir, 'deploy');
    const r = runCli(['export', dir, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /servestack\.json:1:\d+: error: .*\[CONFIG_SCHEMA\]/);
    assert.match(r.stderr, /not exporting/);
    assert.equal(existsSync(out), false);
  });

  test('--hosts that is not HOST:PORT is refused', () => {
    const r = runCli(['export', path.join(ROOT, 'examples', 'hello'), '--out', path.join(tempDir(), 'x'), '--hosts', 'web1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--hosts: 'web1' is not HOST:PORT.*\[EXPORT_FAILED\]/);
  });
});
