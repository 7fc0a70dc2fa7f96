// The text `servestack export` generates, field by field, the warnings, the mapping table
// against the schema, and the nginx.conf reader of `servestack import`. The real tools
// (nginx -t, gunicorn --check-config, the parity suite) are in test/integration.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../server/config';
import { CONFIG_SCHEMA } from '../../server/config/schema';
import type { ServeConfig } from '../../server/config/types';
import { exportFiles, FIELD_MAP, parseHosts } from '../../server/export';
import { exportDiagnostics } from '../../server/export/diagnostics';
import { importNginx, parseNginx } from '../../server/export/importNginx';
import { nginxRate, nginxSize, nginxTime } from '../../server/export/mapping';
import { nginxQuote } from '../../server/export/nginx';
import { interfaceFromSource } from '../../server/export/plan';

function project(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'servestack-export-'));
  mkdirSync(path.join(dir, 'static'));
  writeFileSync(path.join(dir, 'app.py'), 'from flask import Flask\napp = Flask(__name__)\n');
  writeFileSync(path.join(dir, 'api.py'), 'from fastapi import FastAPI\napp = FastAPI()\n');
  return dir;
}

function load(config: unknown, dir = project()): { config: ServeConfig; text: string; file: string } {
  const text = JSON.stringify(config, null, 2);
  const file = path.join(dir, 'servestack.json');
  writeFileSync(file, text);
  const r = parseConfigText(text, file, dir);
  assert.ok(r.config, JSON.stringify(r.diagnostics));
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return { config: r.config, text, file };
}

function exported(config: unknown, hosts?: string) {
  const { config: resolved, text, file } = load(config);
  const result = exportFiles(resolved, path.join(resolved.dir, 'deploy'), { hosts: hosts ? parseHosts(hosts) : undefined, raw: JSON.parse(text) });
  return { ...result, nginx: result.files.get('nginx.conf')!, text, file, resolved };
}

/** The body of `location PATH { … }` (its first level). */
function location(conf: string, p: string): string {
  const start = conf.indexOf(`location ${p} {`);
  assert.ok(start >= 0, `location ${p} in nginx.conf`);
  let depth = 0;
  for (let i = conf.indexOf('{', start); i < conf.length; i++) {
    if (conf[i] === '{') depth++;
    if (conf[i] === '}' && --depth === 0) return conf.slice(start, i + 1);
  }
  throw new Error('unclosed location');
}

const BASIC = { pools: { web: { app: 'app:app' } }, routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }] };

describe('the mapping table', () => {
  test('every field of the schema has a row in FIELD_MAP (map new fields as they land)', () => {
    const s = CONFIG_SCHEMA as { properties: Record<string, { properties?: Record<string, unknown> }>; definitions: Record<string, { properties: Record<string, unknown> }> };
    const fields = [
      ...Object.keys(s.properties).filter((k) => k !== '$schema' && k !== 'limits' && k !== 'pools'),
      ...Object.keys(s.properties.limits.properties!).map((k) => `limits.${k}`),
      ...Object.keys(s.definitions.pythonPool.properties).map((k) => `pools.<name>.${k}`),
      ...Object.keys(s.definitions.commandPool.properties).map((k) => `pools.<name>.${k}`),
      ...Object.keys(s.definitions.route.properties).map((k) => `routes[].${k}`),
    ];
    const mapped = new Set(FIELD_MAP.map((m) => m.field));
    assert.deepEqual([...new Set(fields)].filter((f) => !mapped.has(f)), []);
  });

  test('sizes, times and rates in NGINX units', () => {
    assert.equal(nginxSize(100 * 1024 * 1024), '100m');
    assert.equal(nginxSize(1024 ** 3), '1024m', 'NGINX sizes have no g');
    assert.equal(nginxSize(16 * 1024), '16k');
    assert.equal(nginxSize(1500), '1500');
    assert.equal(nginxSize(0), '0');
    assert.equal(nginxTime(10_000), '10s');
    assert.equal(nginxTime(1500), '1500ms');
    assert.deepEqual(nginxRate({ count: 20, perMs: 1000 }), { rate: '20r/s', burst: 19, exact: true });
    assert.deepEqual(nginxRate({ count: 100, perMs: 60_000 }), { rate: '100r/m', burst: 99, exact: true });
    assert.deepEqual(nginxRate({ count: 120, perMs: 3_600_000 }), { rate: '2r/m', burst: 119, exact: true });
    assert.deepEqual(nginxRate({ count: 100, perMs: 3_600_000 }), { rate: '2r/m', burst: 99, exact: false });
  });

  test('words NGINX reads as one: quoted when needed, "$" refused', () => {
    assert.equal(nginxQuote('/srv/app/static/'), '/srv/app/static/');
    assert.equal(nginxQuote('/srv/my app/"x"'), '"/srv/my app/\\"x\\""');
    assert.throws(() => nginxQuote('/srv/$HOME'), /NGINX would read as a variable/);
  });
});

describe('nginx.conf, field by field', () => {
  test('runnable as any user: pid, logs and temp paths relative to the prefix; mime.types beside it', () => {
    const { nginx, files } = exported(BASIC);
    assert.match(nginx, /^pid logs\/nginx\.pid;$/m);
    assert.match(nginx, /^error_log logs\/error\.log warn;$/m);
    assert.match(nginx, /^\s+access_log logs\/access\.log combined;$/m);
    for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) assert.match(nginx, new RegExp(`_temp_path temp/${t};`));
    assert.match(nginx, /^\s+include mime\.types;$/m);
    assert.doesNotMatch(nginx, /^\s*user /m);
    assert.match(files.get('mime.types')!, /^\s+text\/css css;$/m);
  });

  test('listen, and a tls certificate, or placeholders for one', () => {
    assert.match(exported({ ...BASIC, listen: '0.0.0.0:9000' }).nginx, /^\s+listen 0\.0\.0\.0:9000;$/m);
    const dir = project();
    writeFileSync(path.join(dir, 'c.pem'), 'x');
    writeFileSync(path.join(dir, 'k.pem'), 'x');
    const { config } = load({ ...BASIC, tls: { cert: 'c.pem', key: 'k.pem' } }, dir);
    const conf = exportFiles(config, path.join(dir, 'deploy')).files.get('nginx.conf')!;
    assert.match(conf, /^\s+listen 127\.0\.0\.1:8080 ssl;$/m);
    assert.match(conf, new RegExp(`ssl_certificate ${path.join(dir, 'c.pem').replace(/[.]/g, '\\.')};`));
    assert.match(exported(BASIC).nginx, /#\s+ssl_certificate\s+\/etc\/letsencrypt\/live\/EXAMPLE\.COM\/fullchain\.pem;/);
  });

  test('every limit written out, from the schema defaults when not set', () => {
    const { nginx } = exported(BASIC);
    for (const line of ['client_max_body_size 100m;', 'client_header_timeout 10s;', 'client_header_buffer_size 1k;', 'large_client_header_buffers 4 8k;',
      'client_body_buffer_size 256k;', 'proxy_buffering on;', 'proxy_buffers 8 32k;', 'proxy_buffer_size 32k;', 'proxy_max_temp_file_size 1024m;', 'keepalive_timeout 65s;']) {
      assert.ok(nginx.includes(line), line);
    }
  });

  test('limits set in the config', () => {
    const { nginx, files } = exported({ ...BASIC, limits: { maxBodySize: 0, maxHeaderSize: '32k', headerTimeout: '15s', bufferSize: '512k', maxTempFileSize: 0, maxHeaderCount: 60 } });
    for (const line of ['client_max_body_size 0;', 'large_client_header_buffers 4 8k;', 'client_header_timeout 15s;', 'client_body_buffer_size 512k;', 'proxy_buffers 8 64k;', 'proxy_max_temp_file_size 0;']) {
      assert.ok(nginx.includes(line), line);
    }
    assert.match(files.get('gunicorn.conf.py')!, /^limit_request_fields = 60 /m);
  });

  test('a location per route, longest first; the slash redirect; 404 without a "/" route', () => {
    const { nginx } = exported({ pools: { web: { app: 'app:app' } }, routes: [{ path: '/a/', pool: 'web' }, { path: '/a/b/', static: 'static' }, { path: '/c', pool: 'web' }] });
    assert.ok(nginx.indexOf('location /a/b/ {') < nginx.indexOf('location /a/ {'));
    assert.match(nginx, /location = \/a\/b \{\s+return 301 "\/a\/b\/\$is_args\$args";/);
    assert.match(nginx, /location = \/a \{\s+return 301 "\/a\/\$is_args\$args";/);
    assert.doesNotMatch(nginx, /location = \/c /, 'no redirect for a path without a slash');
    assert.match(location(nginx, '/'), /return 404;\s+error_page 404 @servestack_404;/);
  });

  test('a static route: alias, gzip_static, no-cache, GET/HEAD only, dotfiles 404, no symlinks', () => {
    const { nginx, resolved } = exported(BASIC);
    const loc = location(nginx, '/static/');
    assert.ok(loc.includes(`alias ${resolved.dir}/static/;`));
    for (const line of ['gzip_static on;', 'gzip_vary on;', 'etag on;', 'add_header Cache-Control "no-cache";', 'disable_symlinks on;', 'autoindex off;']) assert.ok(loc.includes(line), line);
    assert.match(loc, /if \(\$request_method !~ \^\(GET\|HEAD\)\$\) \{\s+return 405;/);
    assert.match(loc, /location ~ "\^\/static\/\(\.\*\/\)\?\\\." \{\s+return 404;/);
    assert.doesNotMatch(loc, /proxy_pass/);
  });

  test('forwarding headers SET from the connection, hop-by-hop dropped, Host kept', () => {
    const loc = location(exported(BASIC).nginx, '/');
    assert.ok(loc.includes('proxy_set_header X-Forwarded-For $remote_addr;'));
    assert.doesNotMatch(loc, /proxy_add_x_forwarded_for/, 'never appended to what the client sent');
    for (const line of ['X-Forwarded-Proto $scheme;', 'X-Forwarded-Host $http_host;', 'X-Forwarded-Port $server_port;', 'X-Real-IP $remote_addr;', 'Forwarded "";', 'Host $http_host;', 'Keep-Alive "";', 'TE "";', 'Proxy-Authorization "";']) {
      assert.ok(loc.includes(`proxy_set_header ${line}`), line);
    }
  });

  test('request buffering: on for WSGI pools, off for ASGI and URL routes, the route\'s own when set', () => {
    const { nginx } = exported({
      pools: { web: { app: 'app:app' }, api: { app: 'api:app', interface: 'asgi' } },
      routes: [{ path: '/w/', pool: 'web' }, { path: '/a/', pool: 'api' }, { path: '/u/', proxy: 'http://127.0.0.1:5173' }, { path: '/s/', pool: 'web', requestBuffering: false }, { path: '/t/', pool: 'api', requestBuffering: true }],
    });
    const buffering = (p: string) => /proxy_request_buffering (on|off);/.exec(location(nginx, p))![1];
    assert.deepEqual(['/w/', '/a/', '/u/', '/s/', '/t/'].map(buffering), ['on', 'off', 'off', 'off', 'on']);
    for (const p of ['/w/', '/a/', '/u/']) assert.ok(location(nginx, p).includes('proxy_buffering on;'));
  });

  test('WebSockets: Upgrade and Connection passed for URL routes (ws:// as http://), not for WSGI pools', () => {
    const { nginx } = exported({ pools: { web: { app: 'app:app' } }, routes: [{ path: '/ws/', proxy: 'ws://127.0.0.1:5173/socket/' }, { path: '/', pool: 'web' }] });
    const ws = location(nginx, '/ws/');
    assert.ok(ws.includes('proxy_pass http://127.0.0.1:5173/socket/;'));
    assert.ok(ws.includes('proxy_set_header Upgrade $http_upgrade;'));
    assert.ok(ws.includes('proxy_set_header Connection $servestack_connection;'));
    assert.match(nginx, /map \$http_upgrade \$servestack_connection \{\s+default upgrade;\s+"" "";/);
    assert.ok(location(nginx, '/').includes('proxy_set_header Upgrade "";'));
  });

  test('proxy_read_timeout never shorter than the pool timeout; 24h when the pool has none', () => {
    const t = (timeout: unknown) => /proxy_read_timeout (\S+);/.exec(location(exported({ pools: { web: { app: 'app:app', timeout } }, routes: [{ path: '/', pool: 'web' }] }).nginx, '/'))![1];
    assert.equal(t('90s'), '95s', 'a request slower than NGINX\'s default 60s still gets its answer');
    assert.equal(t('500ms'), '5500ms');
    assert.equal(t(0), '86400s');
  });

  test('rate limits: a zone per route, burst = count - 1, 429 with ServeStack\'s page and Retry-After', () => {
    const { nginx } = exported({ pools: { web: { app: 'app:app' } }, routes: [{ path: '/login', pool: 'web', rateLimit: '5/m' }, { path: '/', pool: 'web' }] });
    assert.match(nginx, /limit_req_zone \$binary_remote_addr zone=servestack_route_0:10m rate=5r\/m;/);
    const loc = location(nginx, '/login');
    assert.match(loc, /limit_req zone=servestack_route_0 burst=4 nodelay;/);
    assert.match(loc, /limit_req_status 429;/);
    const page = location(nginx, '@servestack_route_0_429');
    assert.ok(page.includes('add_header Retry-After 12 always;'));
    assert.ok(page.includes("return 429 '<!doctype html>"));
  });

  test('a route\'s maxBodySize in its location; upstreams per pool, with --hosts', () => {
    const { nginx, files } = exported({ pools: { web: { app: 'app:app' } }, routes: [{ path: '/up/', pool: 'web', maxBodySize: '1g' }, { path: '/', pool: 'web' }] }, '10.0.0.5:9000,10.0.0.6:9000');
    assert.ok(location(nginx, '/up/').includes('client_max_body_size 1024m;'));
    assert.match(nginx, /upstream web \{[^}]*server 10\.0\.0\.5:9000;\s+server 10\.0\.0\.6:9000;/);
    assert.match(files.get('gunicorn.conf.py')!, /^bind = \["0\.0\.0\.0:9000"\]/m, 'app hosts on the network bind every address');
  });
});

describe('gunicorn.conf.py and systemd units', () => {
  test('wsgi_app, workers, threads (gthread), timeouts, max requests with jitter, env', () => {
    const { files } = exported({ pools: { web: { app: 'app:app', workers: 3, threads: 4, timeout: '45s', maxRequests: 500, env: { A: 'b c' } } }, routes: [{ path: '/', pool: 'web' }] });
    const conf = files.get('gunicorn.conf.py')!;
    for (const line of ['wsgi_app = "app:app"', 'bind = ["127.0.0.1:8000"]', 'workers = 3', 'worker_class = "gthread"', 'threads = 4', 'timeout = 45', 'graceful_timeout = 45', 'max_requests = 500', 'max_requests_jitter = 50', 'raw_env = ["A=b c"]', 'reload = False', 'limit_request_line = 0']) {
      assert.match(conf, new RegExp(`^${line.replace(/[[\]().*]/g, '\\$&')}  #`, 'm'), line);
    }
    assert.match(files.get('systemd/servestack-gunicorn-web.service')!, /^ExecStart=\/usr\/bin\/python3 -m gunicorn -c \S+\/deploy\/gunicorn\.conf\.py$/m);
  });

  test('ASGI pools get UvicornWorker, detected when interface is auto; one file per Python pool', () => {
    const { files, warnings } = exported({ pools: { web: { app: 'app:app' }, api: { app: 'api:app' } }, routes: [{ path: '/api/', pool: 'api' }, { path: '/', pool: 'web' }] });
    assert.match(files.get('gunicorn.api.conf.py')!, /^worker_class = "uvicorn\.workers\.UvicornWorker"/m);
    assert.match(files.get('gunicorn.web.conf.py')!, /^worker_class = "sync"/m);
    assert.match(files.get('gunicorn.api.conf.py')!, /^bind = \["127\.0\.0\.1:8001"\]/m);
    assert.ok(!warnings.some((w) => w.code === 'EXPORT_INTERFACE'));
  });

  test('a command pool: a unit with its command and PORT, an upstream beside NGINX', () => {
    const { files, nginx } = exported({ pools: { vite: { command: 'npm run dev -- --port $PORT 100%' } }, routes: [{ path: '/', pool: 'vite' }] });
    const unit = files.get('systemd/servestack-command-vite.service')!;
    assert.match(unit, /^Environment=PORT=8000$/m);
    assert.match(unit, /^ExecStart=\/bin\/sh -c "npm run dev -- --port \$\$PORT 100%%"$/m);
    assert.match(nginx, /upstream vite \{[^}]*server 127\.0\.0\.1:8000;/);
    assert.ok(!files.has('gunicorn.conf.py'));
  });
});

describe('warnings: what production does differently, by field', () => {
  test('none for a plain config', () => {
    assert.deepEqual(exported(BASIC).warnings, []);
  });

  test('each warning names its field and says what production does instead', () => {
    const { warnings } = exported({
      tls: 'auto',
      pools: { web: { app: 'app:app', reload: true, timeout: 0, env: { FLASK_DEBUG: 'true' } }, api: { app: 'api:app', interface: 'asgi' }, other: { app: 'nothere:app' } },
      routes: [{ path: '/api/', pool: 'api' }, { path: '/o/', pool: 'other' }, { path: '/', pool: 'web', rateLimit: '100/h' }],
      limits: { queueSize: 10, maxHeaderCount: 50 },
    });
    const by = Object.fromEntries(warnings.map((w) => [w.code, w]));
    assert.deepEqual(Object.keys(by).sort(), ['EXPORT_DEBUG', 'EXPORT_HEADER_COUNT', 'EXPORT_INTERFACE', 'EXPORT_NO_TIMEOUT', 'EXPORT_QUEUE_SIZE', 'EXPORT_RATE_LIMIT', 'EXPORT_RELOAD', 'EXPORT_TLS', 'EXPORT_WEBSOCKET']);
    assert.deepEqual(by.EXPORT_RELOAD.path, ['pools', 'web', 'reload']);
    assert.match(by.EXPORT_RELOAD.message, /^pools\.web\.reload: production does not restart on file saves/);
    assert.match(by.EXPORT_DEBUG.message, /^pools\.web\.env\.FLASK_DEBUG: FLASK_DEBUG=true is exported as is/);
    assert.match(by.EXPORT_RATE_LIMIT.message, /^routes\[2\]\.rateLimit: NGINX counts it per NGINX host.*enforces 2r\/m/);
    assert.match(by.EXPORT_HEADER_COUNT.message, /NGINX has no header count limit.*\/api\//);
    assert.match(by.EXPORT_INTERFACE.message, /^pools\.other\.app: interface "auto": its module has no file/);
    assert.equal(by.EXPORT_INTERFACE.coveredBy, 'CONFIG_APP_MODULE_MISSING', 'the editor shows the config\'s own diagnostic instead');
  });

  test('a .br sibling in a static folder, which NGINX does not serve', () => {
    const dir = project();
    writeFileSync(path.join(dir, 'static', 'app.js'), 'x');
    writeFileSync(path.join(dir, 'static', 'app.js.br'), 'x');
    const { config, text } = load(BASIC, dir);
    const w = exportFiles(config, path.join(dir, 'deploy'), { raw: JSON.parse(text) }).warnings;
    assert.deepEqual(w.map((x) => [x.code, x.path]), [['EXPORT_PRECOMPRESSED', ['routes', 0, 'static']]]);
  });

  test('as editor diagnostics: warning severity, on the field\'s key', () => {
    const { config, text, file } = load({ pools: { web: { app: 'app:app', reload: true } }, routes: [{ path: '/', pool: 'web' }] });
    const [d] = exportDiagnostics(text, file, config);
    assert.equal(d.code, 'EXPORT_RELOAD');
    assert.equal(d.severity, 'warning');
    assert.equal(text.slice(d.offset, d.offset + d.length), '"reload"');
  });
});

describe('servestack import: reading nginx.conf', () => {
  test('directives, blocks, quotes, comments and ${var}', () => {
    const tree = parseNginx('http { # c\n  server { listen 80; return 200 "a;b}"; set $x ${y}z; }\n}\n');
    const server = tree[0].block![0];
    assert.equal(server.name, 'server');
    assert.deepEqual(server.block!.map((d) => [d.name, d.args]), [['listen', ['80']], ['return', ['200', 'a;b}']], ['set', ['$x', '${y}z']]]);
  });

  test('syntax errors say where', () => {
    for (const [text, message, line] of [['server {\n listen 80;\n', /not closed/, 1], ['listen 80\n}', /no ending ";"/, 1], ['a "b;\n', /unclosed double quote/, 1], ['}\n', /unexpected "}"/, 1]] as const) {
      const r = importNginx(text, '/x/nginx.conf', '/x');
      assert.equal(r.text, undefined);
      assert.equal(r.diagnostics[0].code, 'IMPORT_SYNTAX');
      assert.match(r.diagnostics[0].message, message);
      assert.equal(r.diagnostics[0].line, line);
    }
  });

  test('listen, root, alias, proxy_pass to an upstream or a URL, client_max_body_size, limit_req', () => {
    const dir = project();
    const r = importNginx([
      'limit_req_zone $binary_remote_addr zone=one:10m rate=10r/s;',
      'upstream backend { server 127.0.0.1:9000; }',
      'server {',
      '  listen 127.0.0.1:8081;',
      '  location /files/ { root ' + dir + '; }',
      '  location /api/ { proxy_pass http://backend; limit_req zone=one burst=9 nodelay; }',
      '  location /ext/ { proxy_pass https://example.com/v1/; }',
      '  location / { proxy_pass http://backend; client_max_body_size 2m; }',
      '}',
    ].join('\n'), path.join(dir, 'nginx.conf'), dir);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.config, {
      listen: '127.0.0.1:8081',
      pools: { backend: { app: 'app:app' } },
      routes: [
        { path: '/files/', static: 'files' },
        { path: '/api/', pool: 'backend', rateLimit: '10/s' },
        { path: '/ext/', proxy: 'https://example.com/v1/' },
        { path: '/', pool: 'backend', maxBodySize: '2m' },
      ],
      limits: { maxBodySize: '1m' },
    });
  });

  test('an unknown directive gets its line and column', () => {
    const r = importNginx('server {\n  listen 80;\n  location / {\n    proxy_pass http://127.0.0.1:3000;\n    auth_basic "x";\n  }\n}\n', '/x/nginx.conf', '/x');
    assert.equal(r.diagnostics.length, 1);
    const [d] = r.diagnostics;
    assert.deepEqual([d.line, d.col, d.code, d.severity], [5, 5, 'IMPORT_UNSUPPORTED', 'warning']);
    assert.match(d.message, /"auth_basic x" ServeStack has no equivalent/);
  });
});

describe('interface "auto": WSGI or ASGI from the module\'s source', () => {
  test('a plain function, an async one, a framework object or factory', () => {
    assert.equal(interfaceFromSource('def app(environ, start_response):\n    pass\n', 'app'), 'wsgi');
    assert.equal(interfaceFromSource('async def app(scope, receive, send):\n    pass\n', 'app'), 'asgi');
    assert.equal(interfaceFromSource('from flask import Flask\ndef create_app():\n    return Flask(__name__)\n', 'create_app'), 'wsgi');
    assert.equal(interfaceFromSource('from fastapi import FastAPI\napi = FastAPI()\n', 'api'), 'asgi');
    assert.equal(interfaceFromSource('app = object()\n', 'app'), undefined);
  });
});
