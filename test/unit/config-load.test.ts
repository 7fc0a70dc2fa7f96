// The loader: positions, defaults from the schema, overrides, paths, the ways to find a
// config (folder, --config, detection), data for quick fixes, and the printed form.
import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { CONFIG_SCHEMA, formatDiagnostic, loadConfig, parseConfigText, parseDuration, parseSize, type Diagnostic } from '../../server/config';

const FIXTURES = join(__dirname, '../fixtures/config');
const PROJECT = join(FIXTURES, 'project');
const FILE = join(PROJECT, 'servestack.json');

function parse(text: string, overrides = {}) {
  return parseConfigText(text, FILE, PROJECT, overrides);
}

function only(diagnostics: Diagnostic[], code: string): Diagnostic {
  const found = diagnostics.filter((d) => d.code === code);
  assert.equal(found.length, 1, `one ${code} expected, got ${JSON.stringify(diagnostics, null, 1)}`);
  return found[0];
}

const WEB = '"pools": { "web": { "app": "app:app" } }';

// Every route compresses unless it says otherwise: the schema's defaults, resolved.
const compression = (CONFIG_SCHEMA as { definitions: { compression: { properties: Record<string, { default: unknown }> } } }).definitions.compression.properties;
const COMPRESS = {
  compress: {
    types: compression.types.default,
    minSize: parseSize(compression.minSize.default as string).value,
    gzipLevel: compression.gzipLevel.default,
    brotliQuality: compression.brotliQuality.default,
  },
};

describe('positions', () => {
  test('points at the offending value with 1-based line/col and 0-based offset/length', () => {
    const text = `{\n  ${WEB},\n  "routes": [{ "path": "/", "pool": "web" }],\n  "limits": { "maxBodySize": "10x" }\n}\n`;
    const d = only(parse(text).diagnostics, 'CONFIG_BAD_UNIT');
    assert.equal(text.slice(d.offset, d.offset + d.length), '"10x"');
    assert.deepEqual([d.line, d.col, d.endLine, d.endCol], [4, 30, 4, 35]);
    assert.equal(d.file, FILE);
    assert.equal(d.severity, 'error');
  });

  test('counts columns in UTF-16 units and lines across CRLF line ends', () => {
    const text = `{\r\n  "routes": [\r\n    { "path": "/☃/", "static": "missing ☃" }\r\n  ]\r\n}`;
    const d = only(parse(text).diagnostics, 'CONFIG_STATIC_MISSING');
    assert.equal(text.slice(d.offset, d.offset + d.length), '"missing ☃"');
    assert.deepEqual([d.line, d.col], [3, 32]);
  });

  test('gives offsets without the byte order mark, as editors do', () => {
    const text = '\uFEFF{ "listen": 0 }';
    const d = only(parse(text).diagnostics, 'CONFIG_BAD_PORT');
    assert.deepEqual([d.offset, d.length, d.col], [12, 1, 13]);
  });

  test('points at the key of an unknown field and of an unused pool', () => {
    const text = `{ "pools": { "spare": { "app": "app:app", "extra": 1 } }, "routes": [] }`;
    const { diagnostics } = parse(text);
    const unknown = only(diagnostics, 'CONFIG_UNKNOWN_FIELD');
    assert.equal(text.slice(unknown.offset, unknown.offset + unknown.length), '"extra"');
    const unused = only(diagnostics, 'CONFIG_POOL_UNUSED');
    assert.equal(text.slice(unused.offset, unused.offset + unused.length), '"spare"');
  });

  test('reports a syntax error at the token, and nothing from the schema for a broken file', () => {
    const text = '{ "listen": 8080, "pools": { "web": { "workers": 0 } }';
    const { diagnostics, config } = parse(text);
    assert.equal(config, undefined);
    assert.deepEqual(
      diagnostics.map((d) => d.code),
      ['CONFIG_SYNTAX'],
    );
    assert.equal(diagnostics[0].offset, text.length);
  });

  test('reports an empty file as a syntax error that says what to write', () => {
    const d = only(parse('  \n').diagnostics, 'CONFIG_SYNTAX');
    assert.match(d.message, /empty/);
    assert.match(d.message, /servestack init/);
  });
});

describe('defaults', () => {
  const schema = CONFIG_SCHEMA as any;
  const defs = schema.definitions;

  test('fills every default of a Python pool, the limits and listen from schema.json', () => {
    const { config, diagnostics } = parse(`{ ${WEB} }`);
    assert.deepEqual(diagnostics, []);
    assert.ok(config);
    const web = config.pools.web;
    assert.equal(web.kind, 'python');
    if (web.kind !== 'python') return;
    const py = defs.pythonPool.properties;
    assert.equal(web.workers, py.workers.default);
    assert.equal(web.threads, py.threads.default);
    assert.equal(web.maxRequests, py.maxRequests.default);
    assert.equal(web.reload, py.reload.default);
    assert.equal(web.interface, py.interface.default);
    assert.equal(web.timeoutMs, parseDuration(defs.poolTimeout.default).value);
    assert.deepEqual(web.env, defs.env.default);
    assert.equal(web.python, undefined);
    assert.equal(web.cwd, PROJECT);
    const limits = schema.properties.limits.properties;
    assert.deepEqual(config.limits, {
      maxBodySize: parseSize(limits.maxBodySize.default).value,
      maxHeaderSize: parseSize(limits.maxHeaderSize.default).value,
      maxHeaderLineSize: parseSize(limits.maxHeaderLineSize.default).value,
      headerTimeoutMs: parseDuration(limits.headerTimeout.default).value,
      queueSize: limits.queueSize.default,
      maxHeaderCount: limits.maxHeaderCount.default,
      bufferSize: parseSize(limits.bufferSize.default).value,
      maxTempFileSize: parseSize(limits.maxTempFileSize.default).value,
      maxWebSocketMessageSize: parseSize(limits.maxWebSocketMessageSize.default).value,
    });
    assert.equal(`${config.listen.host}:${config.listen.port}`, defs.listen.default);
    assert.equal(config.listen.pinned, false);
  });

  test('sends everything to the only pool when "routes" is left out (index -1: not in the file)', () => {
    const { config } = parse(`{ ${WEB} }`);
    assert.deepEqual(config?.routes, [{ kind: 'pool', pool: 'web', path: '/', index: -1, ...COMPRESS }]);
  });

  test('gives a command pool the shared pool timeout default', () => {
    const { config } = parse('{ "pools": { "ui": { "command": "npm run dev -- --port $PORT" } }, "routes": [{ "path": "/", "pool": "ui" }] }');
    assert.deepEqual(config?.pools.ui, {
      kind: 'command',
      name: 'ui',
      command: 'npm run dev -- --port $PORT',
      env: {},
      cwd: PROJECT,
      timeoutMs: parseDuration(defs.poolTimeout.default).value,
    });
  });
});

describe('listen and overrides', () => {
  const base = `${WEB}, "routes": [{ "path": "/", "pool": "web" }]`;

  test('a port number in the config pins the port and keeps the default host', () => {
    const { config } = parse(`{ "listen": 9000, ${base} }`);
    assert.deepEqual(config?.listen, { host: '127.0.0.1', port: 9000, pinned: true });
  });

  test('reads "host:port", ":port" and "[v6]:port"', () => {
    assert.deepEqual(parse(`{ "listen": "0.0.0.0:8000", ${base} }`).config?.listen, { host: '0.0.0.0', port: 8000, pinned: true });
    assert.deepEqual(parse(`{ "listen": ":8001", ${base} }`).config?.listen, { host: '127.0.0.1', port: 8001, pinned: true });
    assert.deepEqual(parse(`{ "listen": "[::1]:8002", ${base} }`).config?.listen, { host: '::1', port: 8002, pinned: true });
  });

  test('rejects a URL in "listen" with the address to write instead', () => {
    const d = only(parse(`{ "listen": "http://localhost:8080/", ${base} }`).diagnostics, 'CONFIG_BAD_PORT');
    assert.match(d.message, /write "localhost:8080"/);
  });

  test('--port pins the port over the config, --host replaces the host', () => {
    const { config } = parse(`{ "listen": "0.0.0.0:9000", ${base} }`, { port: 7000, host: 'localhost' });
    assert.deepEqual(config?.listen, { host: 'localhost', port: 7000, pinned: true });
    assert.equal(parse(`{ ${base} }`, { port: 7001 }).config?.listen.pinned, true);
  });

  test('--port 0 is accepted (any free port); --port 70000 is CONFIG_BAD_PORT', () => {
    assert.equal(parse(`{ ${base} }`, { port: 0 }).config?.listen.port, 0);
    const { config, diagnostics } = parse(`{ ${base} }`, { port: 70000 });
    assert.equal(config, undefined);
    assert.match(only(diagnostics, 'CONFIG_BAD_PORT').message, /--port 70000/);
  });

  test('--workers sets every Python pool and leaves command pools alone', () => {
    const text = `{ "pools": { "a": { "app": "app:app", "workers": 4 }, "b": { "app": "pkg.wsgi:application" }, "c": { "command": "serve" } },
      "routes": [{ "path": "/a/", "pool": "a" }, { "path": "/b/", "pool": "b" }, { "path": "/", "pool": "c" }] }`;
    const { config } = parse(text, { workers: 3 });
    assert.ok(config);
    assert.deepEqual(
      Object.values(config.pools).map((p) => (p.kind === 'python' ? p.workers : p.kind)),
      [3, 3, 'command'],
    );
    assert.equal(only(parse(text, { workers: 0 }).diagnostics, 'CONFIG_SCHEMA').message.includes('--workers 0'), true);
  });
});

describe('routes and paths', () => {
  test('keeps each route with its config index, resolves static folders against the folder, allows absolute ones', () => {
    const absolute = join(PROJECT, 'snow ☃');
    const text = JSON.stringify({
      pools: { web: { app: 'app:app', envFile: '.env', python: 'python3' } },
      routes: [
        { path: '/space/', static: 'with space' },
        { path: '/snow/', static: absolute },
        { path: '/vite/', proxy: 'http://127.0.0.1:5173', maxBodySize: '1k', rateLimit: '100/m' },
        { path: '/', pool: 'web' },
      ],
    });
    const { config, diagnostics } = parse(text);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(config?.routes, [
      { kind: 'static', root: join(PROJECT, 'with space'), path: '/space/', index: 0, ...COMPRESS },
      { kind: 'static', root: absolute, path: '/snow/', index: 1, ...COMPRESS },
      {
        kind: 'proxy',
        target: 'http://127.0.0.1:5173',
        targets: ['http://127.0.0.1:5173'],
        balance: { method: 'round-robin', maxFails: 1, failTimeoutMs: 10_000 },
        path: '/vite/',
        index: 2,
        maxBodySize: 1024,
        rateLimit: { count: 100, perMs: 60_000 },
        ...COMPRESS,
      },
      { kind: 'pool', pool: 'web', path: '/', index: 3, ...COMPRESS },
    ]);
    const web = config?.pools.web;
    assert.equal(web?.envFile, join(PROJECT, '.env'));
    assert.equal(web?.kind === 'python' && web.python, 'python3', 'a bare interpreter name stays a command on PATH');
  });

  test('carries data for quick fixes: pool names, first index, folder, candidates, suggestion', () => {
    const text = `{ "pools": { "web": { "app": "nowhere:app", "wrokers": 2 } },
      "routes": [{ "path": "/", "pool": "web" }, { "path": "/", "static": "gone" }, { "path": "/x/", "pool": "api" }] }`;
    const { diagnostics } = parse(text);
    assert.deepEqual(only(diagnostics, 'CONFIG_POOL_MISSING').data, { pools: ['web'] });
    assert.deepEqual(only(diagnostics, 'CONFIG_DUPLICATE_ROUTE').data, { firstIndex: 0 });
    assert.deepEqual(only(diagnostics, 'CONFIG_STATIC_MISSING').data, { folder: join(PROJECT, 'gone') });
    assert.deepEqual(only(diagnostics, 'CONFIG_APP_MODULE_MISSING').data, { candidates: ['app:app', 'pkg.wsgi:application'] });
    assert.equal(only(diagnostics, 'CONFIG_UNKNOWN_FIELD').data?.suggestion, 'workers');
  });

  test('takes "app" over "command" when a pool has both, with a warning on "command"', () => {
    const { config, diagnostics } = parse('{ "pools": { "web": { "app": "app:app", "command": "x" } } }');
    assert.equal(config?.pools.web.kind, 'python');
    assert.equal(only(diagnostics, 'CONFIG_UNKNOWN_FIELD').data?.field, 'command');
  });

  test('accepts a factory call with arguments as an app target', () => {
    const { diagnostics } = parse('{ "pools": { "web": { "app": "pkg.wsgi:create(\'dev\', debug=True)" } } }');
    assert.deepEqual(diagnostics, []);
  });
});

describe('loadConfig', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'servestack-config-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('reads DIR/servestack.json and resolves its paths against DIR', () => {
    const dir = join(scratch, 'with config');
    cpSync(PROJECT, dir, { recursive: true });
    writeFileSync(join(dir, 'servestack.json'), `// comment\n{ ${WEB}, "routes": [{ "path": "/s/", "static": "snow ☃" }, { "path": "/", "pool": "web" }], }`);
    const { config, diagnostics } = loadConfig(dir);
    assert.deepEqual(diagnostics, []);
    assert.equal(config?.file, join(dir, 'servestack.json'));
    assert.equal(config?.detected, false);
    assert.equal(config?.routes[0].kind === 'static' && config.routes[0].root, join(dir, 'snow ☃'));
  });

  test('uses a --config file named relative to the current directory, paths still against DIR', () => {
    const file = join(scratch, 'other.json');
    writeFileSync(file, `{ ${WEB} }`);
    const { config, diagnostics } = loadConfig(PROJECT, { configFile: relative(process.cwd(), file) });
    assert.deepEqual(diagnostics, []);
    assert.equal(config?.file, file);
    assert.equal(config?.dir, PROJECT);
  });

  test('reports CONFIG_NOT_FOUND for a missing --config file and a missing folder', () => {
    const missing = loadConfig(PROJECT, { configFile: join(scratch, 'nope.json') });
    assert.equal(missing.config, undefined);
    assert.equal(only(missing.diagnostics, 'CONFIG_NOT_FOUND').file, join(scratch, 'nope.json'));
    const noDir = loadConfig(join(scratch, 'no such folder'));
    assert.match(only(noDir.diagnostics, 'CONFIG_NOT_FOUND').message, /does not exist/);
  });

  test('detects the app when the folder has no servestack.json, and applies overrides', () => {
    const { config, diagnostics } = loadConfig(join(FIXTURES, 'flask'), { overrides: { port: 5050, workers: 4 } });
    assert.deepEqual(diagnostics, []);
    assert.equal(config?.detected, true);
    assert.equal(config?.file, undefined);
    assert.deepEqual(config?.listen, { host: '127.0.0.1', port: 5050, pinned: true });
    assert.equal(config?.pools.web.kind === 'python' && config.pools.web.workers, 4);
  });
});

describe('robustness', () => {
  const valid = {
    listen: '127.0.0.1:9000',
    tls: { cert: '.env', key: '.env' },
    pools: { web: { app: 'app:app', workers: 2, env: { A: 'b' }, timeout: '5s' }, ui: { command: 'serve', timeout: 3 } },
    routes: [
      { path: '/s/', static: 'static', maxBodySize: '1m', rateLimit: '5/s' },
      { path: '/ui/', pool: 'ui' },
      { path: '/', pool: 'web' },
    ],
    limits: { maxBodySize: '1m', maxHeaderSize: '8k', headerTimeout: '5s', queueSize: 4 },
  };

  function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
    if (value === null || typeof value !== 'object') return [prefix];
    const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
    return [prefix, ...keys.flatMap((k) => paths((value as any)[k], [...prefix, k]))];
  }

  function replaced(path: (string | number)[], next: unknown): unknown {
    const copy = structuredClone(valid) as any;
    if (path.length === 0) return next;
    let at = copy;
    for (const k of path.slice(0, -1)) at = at[k];
    at[path[path.length - 1]] = next;
    return copy;
  }

  test('the valid base config loads without diagnostics', () => {
    assert.deepEqual(parse(JSON.stringify(valid)).diagnostics, []);
  });

  test('never throws, and reports an error, when any value is replaced by one of the wrong type', () => {
    for (const path of paths(valid)) {
      for (const next of [null, 'x y', -3, [], {}, true]) {
        const text = JSON.stringify(replaced(path, next));
        const { config, diagnostics } = parse(text);
        assert.equal(config === undefined, diagnostics.some((d) => d.severity === 'error'), text);
        for (const d of diagnostics) {
          assert.ok(d.offset >= 0 && d.offset + d.length <= text.length, `${d.code} inside the text`);
          assert.ok(d.message.length > 10);
        }
      }
    }
  });
});

describe('formatDiagnostic', () => {
  test('prints file:line:col: severity: message [CODE], relative when asked', () => {
    const d = only(parse(`{\n  "listen": 0,\n  ${WEB} }`).diagnostics, 'CONFIG_BAD_PORT');
    assert.equal(formatDiagnostic(d, PROJECT), `servestack.json:2:13: error: ${d.message} [CONFIG_BAD_PORT]`);
    assert.equal(formatDiagnostic(d).startsWith(`${FILE}:2:13: error: `), true);
  });
});
