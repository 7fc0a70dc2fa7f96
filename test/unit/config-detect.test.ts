// Detection of an app in a folder without servestack.json, and the starter config
// `servestack init` writes from it.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CONFIG_SCHEMA, detectApp, loadConfig, parseConfigText, parseSize, starterConfigText, type ServeConfig } from '../../server/config';

const FIXTURES = join(__dirname, '../fixtures/config');
const at = (name: string) => join(FIXTURES, name);
// Every route compresses unless it says otherwise: the schema's defaults, resolved.
const compression = (CONFIG_SCHEMA as { definitions: { compression: { properties: Record<string, { default: unknown }> } } }).definitions.compression.properties;
const COMPRESS = {
  compress: {
    types: compression.types.default,
    minSize: parseSize(compression.minSize.default).value,
    gzipLevel: compression.gzipLevel.default,
    brotliQuality: compression.brotliQuality.default,
  },
};

function pick(c: ReturnType<typeof detectApp>[number]) {
  return { target: c.target, interface: c.interface, file: c.file, line: c.line, framework: c.framework };
}

describe('detectApp', () => {
  test('finds a Flask app object as WSGI, at its line', () => {
    const [first, ...rest] = detectApp(at('flask'));
    assert.deepEqual(pick(first), { target: 'app:app', interface: 'wsgi', file: join(at('flask'), 'app.py'), line: 4, framework: 'flask' });
    assert.deepEqual(first.static, { path: '/static/', folder: join(at('flask'), 'static') });
    assert.deepEqual(rest, []);
  });

  test('finds a FastAPI app (annotated assignment, any name) as ASGI', () => {
    assert.deepEqual(detectApp(at('fastapi')).map(pick), [
      { target: 'main:api', interface: 'asgi', file: join(at('fastapi'), 'main.py'), line: 3, framework: 'fastapi' },
    ]);
  });

  test('finds a Starlette app as ASGI', () => {
    assert.deepEqual(detectApp(at('starlette')).map((c) => [c.target, c.interface]), [['main:app', 'asgi']]);
  });

  test('finds a factory in a package as module:create_app(), WSGI when the file imports Flask', () => {
    assert.deepEqual(detectApp(at('factory')).map(pick), [
      { target: 'myapp:create_app()', interface: 'wsgi', file: join(at('factory'), 'myapp', '__init__.py'), line: 4, framework: 'factory' },
    ]);
  });

  test("finds Django's project/wsgi.py application first, and asgi.py's as ASGI", () => {
    assert.deepEqual(
      detectApp(at('django')).map((c) => [c.target, c.interface]),
      [
        ['mysite.wsgi:application', 'wsgi'],
        ['mysite.asgi:application', 'asgi'],
      ],
    );
  });

  test("reads Flask's static_folder and static_url_path, across lines", () => {
    const [first] = detectApp(at('flask-static-folder'));
    assert.equal(first.target, 'app:app');
    assert.deepEqual(first.static, { path: '/assets/', folder: join(at('flask-static-folder'), 'assets') });
  });

  test('prefers app.py, then main.py, over other files; ignores comments and tests/', () => {
    assert.deepEqual(
      detectApp(at('preference')).map((c) => [c.target, c.line]),
      [
        ['app:application', 4],
        ['main:app', 2],
        ['server:app', 2],
      ],
    );
  });

  test('finds nothing in a folder with no Python app', () => {
    assert.deepEqual(detectApp(at('nothing')), []);
    assert.deepEqual(detectApp(at('static-only')), []);
  });

  describe('in folders it must not read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'servestack-detect-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('skips .venv, venv, node_modules, .git, __pycache__ and files that are not modules', () => {
      for (const sub of ['.venv', 'venv', 'node_modules', '.git', '__pycache__', 'with space', 'snow ☃']) {
        mkdirSync(join(dir, sub), { recursive: true });
        writeFileSync(join(dir, sub, 'app.py'), 'from flask import Flask\napp = Flask(__name__)\n');
      }
      writeFileSync(join(dir, 'my-app.py'), 'from flask import Flask\napp = Flask(__name__)\n');
      writeFileSync(join(dir, 'test_app.py'), 'from flask import Flask\napp = Flask(__name__)\n');
      assert.deepEqual(detectApp(dir), []);
    });
  });
});

describe('serving a folder without config', () => {
  function detected(name: string): ServeConfig {
    const { config, diagnostics } = loadConfig(at(name));
    assert.deepEqual(diagnostics, []);
    assert.ok(config);
    assert.equal(config.detected, true);
    return config;
  }

  test('a Flask app: its static folder at /static/, everything else to the pool "web"', () => {
    const config = detected('flask');
    assert.deepEqual(config.routes, [
      { kind: 'static', root: join(at('flask'), 'static'), path: '/static/', index: 0, ...COMPRESS },
      { kind: 'pool', pool: 'web', path: '/', index: 1, ...COMPRESS },
    ]);
    assert.deepEqual(
      Object.values(config.pools).map((p) => [p.kind, p.kind === 'python' && p.app, p.kind === 'python' && p.interface]),
      [['python', 'app:app', 'wsgi']],
    );
  });

  test('a static site (index.html, no app): the folder at "/", no pools', () => {
    const config = detected('static-only');
    assert.deepEqual(config.pools, {});
    assert.deepEqual(config.routes, [{ kind: 'static', root: at('static-only'), path: '/', index: 0, ...COMPRESS }]);
  });

  test('a folder named "snow ☃ site" with a static folder "with space"', () => {
    const config = detected('snow ☃ site');
    assert.deepEqual(config.routes[0], { kind: 'static', root: join(at('snow ☃ site'), 'with space'), path: '/with space/', index: 0, ...COMPRESS });
  });

  test('nothing found: CONFIG_NO_APP on the folder, saying what was looked for and what to do', () => {
    const { config, diagnostics } = loadConfig(at('nothing'));
    assert.equal(config, undefined);
    assert.equal(diagnostics.length, 1);
    const [d] = diagnostics;
    assert.equal(d.code, 'CONFIG_NO_APP');
    assert.equal(d.severity, 'error');
    assert.equal(d.file, at('nothing'));
    assert.deepEqual([d.line, d.col, d.offset, d.length], [1, 1, 0, 0]);
    assert.match(d.message, /Flask/);
    assert.match(d.message, /create_app/);
    assert.match(d.message, /servestack init/);
    assert.match(d.message, /servestack\.json/);
  });
});

describe('starterConfigText', () => {
  const folders = ['flask', 'flask-static-folder', 'fastapi', 'starlette', 'factory', 'django', 'static-only', 'preference', 'snow ☃ site'];

  for (const name of folders) {
    test(`for ${name}: parses without errors and serves what detection serves`, () => {
      const dir = at(name);
      const text = starterConfigText(dir);
      const { config, diagnostics } = parseConfigText(text, join(dir, 'servestack.json'), dir);
      assert.deepEqual(diagnostics, [], text);
      const served = detectedConfigOf(dir);
      assert.deepEqual(config?.routes, served.routes);
      assert.deepEqual(
        Object.values(config?.pools ?? {}).map((p) => p.kind === 'python' && [p.name, p.app, p.interface]),
        Object.values(served.pools).map((p) => p.kind === 'python' && [p.name, p.app, p.interface]),
      );
    });
  }

  function detectedConfigOf(dir: string): ServeConfig {
    const config = loadConfig(dir).config;
    assert.ok(config);
    return config;
  }

  test('with nothing detected: a commented template with no errors, only the warning that its module is missing', () => {
    const dir = at('nothing');
    const text = starterConfigText(dir);
    assert.match(text, /No app was detected/);
    const { diagnostics } = parseConfigText(text, join(dir, 'servestack.json'), dir);
    assert.deepEqual(
      diagnostics.map((d) => [d.code, d.severity]),
      [['CONFIG_APP_MODULE_MISSING', 'warning']],
    );
  });

  test('leaves "listen" commented out, so the port is not pinned', () => {
    const dir = at('flask');
    const { config } = parseConfigText(starterConfigText(dir), join(dir, 'servestack.json'), dir);
    assert.equal(config?.listen.pinned, false);
  });

  describe('in a folder with a virtual environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'servestack-starter-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('names the environment\'s interpreter', () => {
      mkdirSync(join(dir, '.venv', 'bin'), { recursive: true });
      writeFileSync(join(dir, '.venv', 'bin', 'python'), '');
      writeFileSync(join(dir, 'main.py'), 'from fastapi import FastAPI\napp = FastAPI()\n');
      const text = starterConfigText(dir);
      const { config, diagnostics } = parseConfigText(text, join(dir, 'servestack.json'), dir);
      assert.deepEqual(diagnostics, []);
      const web = config?.pools.web;
      assert.equal(web?.kind === 'python' && web.python, join(dir, '.venv', 'bin', 'python'));
    });
  });
});
