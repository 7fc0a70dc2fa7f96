// The config-change planner (server/config/apply.ts) and the provision checks
// (server/config/provision.ts). Each planner case is a pair of servestack.json texts read
// by the real loader in a real folder, and the plan expected between them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../../server/config';
import { LIMITS, placeOf, planConfigChange, runningAfter, type ConfigPlan } from '../../server/config/apply';
import { checkProvision, findExecutable } from '../../server/config/provision';
import { CONFIG_SCHEMA } from '../../server/config/schema';
import type { LimitsConfig, ServeConfig } from '../../server/config/types';

let dir: string;

function load(text: string): ServeConfig {
  const file = path.join(dir, 'servestack.json');
  const result = parseConfigText(text, file, dir);
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], `the case's config has errors: ${text}`);
  return result.config!;
}

const BASE = {
  pools: { web: { app: 'app:app', workers: 2 } },
  routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }],
};
const withBase = (change: Record<string, unknown>): string => JSON.stringify({ ...BASE, ...change }, null, 2);
const poolWith = (fields: Record<string, unknown>): string => withBase({ pools: { web: { ...BASE.pools.web, ...fields } } });
const limits = (l: Record<string, unknown>): string => withBase({ limits: l });

interface Case {
  name: string;
  before: string;
  next: string;
  /** The port the running listener is bound to (default: the before config's port). */
  boundPort?: number;
  expect: Partial<Pick<ConfigPlan, 'unchanged' | 'routesChanged' | 'pools'>> & {
    restart?: string[];
    limits?: [field: string, applies: string][];
  };
}

const CASES: Case[] = [
  { name: 'an identical config is a no-op', before: withBase({}), next: withBase({}), expect: { unchanged: true, restart: [], limits: [], pools: [], routesChanged: false } },
  { name: 'a comment and new spacing are a no-op', before: withBase({}), next: `// edited\n${withBase({}).replace(/\n/g, '\n\n')}`, expect: { unchanged: true } },
  { name: 'a new pinned port needs a restart, and nothing else changes', before: withBase({ listen: '127.0.0.1:8400' }), next: withBase({ listen: '127.0.0.1:8401' }), expect: { unchanged: false, restart: ['listen'], limits: [], pools: [], routesChanged: false } },
  { name: 'a new host needs a restart', before: withBase({ listen: '127.0.0.1:8400' }), next: withBase({ listen: '0.0.0.0:8400' }), expect: { restart: ['listen'] } },
  { name: 'pinning the port the unpinned server already has changes nothing', before: withBase({}), next: withBase({ listen: '127.0.0.1:8080' }), boundPort: 8080, expect: { unchanged: true, restart: [] } },
  { name: 'pinning a port other than the one it moved on to needs a restart', before: withBase({}), next: withBase({ listen: '127.0.0.1:8080' }), boundPort: 8081, expect: { restart: ['listen'] } },
  { name: 'removing a pinned listen of another port needs a restart', before: withBase({ listen: '127.0.0.1:9000' }), next: withBase({}), expect: { restart: ['listen'] } },
  { name: 'tls needs a restart', before: withBase({}), next: withBase({ tls: 'auto' }), expect: { restart: ['tls'] } },
  { name: 'queueSize applies live through the pools', before: withBase({}), next: limits({ queueSize: 2 }), expect: { restart: [], limits: [['limits.queueSize', 'pool']], pools: [], routesChanged: false } },
  { name: 'headerTimeout applies live on the listener', before: withBase({}), next: limits({ headerTimeout: '2s' }), expect: { restart: [], limits: [['limits.headerTimeout', 'listener']] } },
  { name: 'maxHeaderSize applies to new connections', before: withBase({}), next: limits({ maxHeaderSize: '4k' }), expect: { restart: [], limits: [['limits.maxHeaderSize', 'connection']] } },
  {
    name: 'the per-request limits apply with the routes',
    before: withBase({}),
    next: limits({ maxBodySize: '1m', maxHeaderCount: 50, bufferSize: '64k', maxTempFileSize: 0 }),
    expect: { restart: [], limits: [['limits.maxBodySize', 'request'], ['limits.maxHeaderCount', 'request'], ['limits.bufferSize', 'request'], ['limits.maxTempFileSize', 'request']] },
  },
  { name: 'a new worker count changes the pool live', before: withBase({}), next: poolWith({ workers: 3 }), expect: { pools: [{ name: 'web', action: 'update', fields: ['workers'] }], routesChanged: false } },
  { name: 'timeout, maxRequests and reload change the pool live', before: withBase({}), next: poolWith({ timeout: '5s', maxRequests: 100, reload: true }), expect: { pools: [{ name: 'web', action: 'update', fields: ['timeout', 'maxRequests', 'reload'] }] } },
  { name: 'a new app reloads the pool', before: withBase({}), next: poolWith({ app: 'app:other' }), expect: { pools: [{ name: 'web', action: 'reload', fields: ['app'] }] } },
  { name: 'env and threads reload the pool; the worker count rides along', before: withBase({}), next: poolWith({ env: { A: '1' }, threads: 4, workers: 3 }), expect: { pools: [{ name: 'web', action: 'reload', fields: ['threads', 'env'] }] } },
  {
    name: 'a new pool starts, a removed one stops',
    before: withBase({}),
    next: withBase({ pools: { api: { app: 'app:app' } }, routes: [{ path: '/', pool: 'api' }] }),
    expect: { pools: [{ name: 'api', action: 'start' }, { name: 'web', action: 'stop' }], routesChanged: true },
  },
  { name: 'a pool that changes kind is replaced', before: withBase({}), next: withBase({ pools: { web: { command: 'npm start' } } }), expect: { pools: [{ name: 'web', action: 'replace' }] } },
  {
    name: 'a command pool with a new command is restarted',
    before: withBase({ pools: { web: { command: 'npm start' } } }),
    next: withBase({ pools: { web: { command: 'npm run dev' } } }),
    expect: { pools: [{ name: 'web', action: 'reload', fields: ['command'] }] },
  },
  { name: 'a new route changes the routes only', before: withBase({}), next: withBase({ routes: [{ path: '/assets/', static: 'static' }, ...BASE.routes] }), expect: { routesChanged: true, pools: [], restart: [], limits: [] } },
];

describe('planConfigChange', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-apply-'));
    fs.writeFileSync(path.join(dir, 'app.py'), 'def app(environ, start_response):\n    pass\nother = app\n');
    fs.mkdirSync(path.join(dir, 'static'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const c of CASES) {
    it(c.name, () => {
      const b = load(c.before);
      const plan = planConfigChange(b, load(c.next), { boundPort: c.boundPort ?? b.listen.port });
      const { restart, limits: limitChanges, ...rest } = c.expect;
      for (const [key, value] of Object.entries(rest)) assert.deepEqual(plan[key as keyof ConfigPlan], value, key);
      if (restart) assert.deepEqual(plan.restartNeeded.map((r) => r.field), restart);
      if (limitChanges) assert.deepEqual(plan.limits.map((l) => [l.field, l.applies]), limitChanges);
    });
  }

  it('says what runs and what the file asks for when listen needs a restart', () => {
    const plan = planConfigChange(load(withBase({ listen: '127.0.0.1:8400' })), load(withBase({ listen: 8401 })), { boundPort: 8400 });
    assert.deepEqual(plan.restartNeeded, [{ field: 'listen', path: ['listen'], running: '127.0.0.1:8400', wanted: '127.0.0.1:8401' }]);
  });

  it('decides every limit of the schema, by its name in the file', () => {
    const schemaLimits = Object.keys((CONFIG_SCHEMA as { properties: { limits: { properties: object } } }).properties.limits.properties).sort();
    assert.deepEqual(Object.values(LIMITS).map((l) => l.field).sort(), schemaLimits);
  });

  it('keeps the running listen and tls after a swap, and takes everything else', () => {
    const b = load(withBase({ listen: '127.0.0.1:8400' }));
    const n = load(withBase({ listen: '127.0.0.1:8401', tls: 'auto', limits: { queueSize: 3 } }));
    const after = runningAfter(b, n);
    assert.deepEqual(after.listen, b.listen);
    assert.equal(after.tls, undefined);
    assert.equal(after.limits.queueSize, 3);
    assert.equal(planConfigChange(after, n, { boundPort: 8400 }).restartNeeded.length, 2, 'the restart is still needed on the next change');
    assert.equal(planConfigChange(after, after, { boundPort: 8400 }).unchanged, true);
  });

  it('keeps a limit marked restart-only at its running value', () => {
    const key: keyof LimitsConfig = 'queueSize';
    const saved = LIMITS[key].applies;
    (LIMITS[key] as { applies: string }).applies = 'restart';
    try {
      const b = load(withBase({}));
      const n = load(limits({ queueSize: 3 }));
      const plan = planConfigChange(b, n, { boundPort: b.listen.port });
      assert.deepEqual(plan.restartNeeded.map((r) => [r.field, r.path]), [['limits.queueSize', ['limits', 'queueSize']]]);
      assert.deepEqual(plan.limits, []);
      assert.equal(runningAfter(b, n).limits.queueSize, b.limits.queueSize);
    } finally {
      (LIMITS[key] as { applies: string }).applies = saved;
    }
  });

  it('places a field at its line in the text', () => {
    const text = '{\n  // the port\n  "listen": "127.0.0.1:8401",\n  "limits": { "queueSize": 2 }\n}\n';
    assert.deepEqual(placeOf(text, ['listen']), { line: 3, col: 13 });
    assert.deepEqual(placeOf(text, ['limits', 'queueSize']), { line: 4, col: 28 });
    assert.deepEqual(placeOf(undefined, ['listen']), { line: 1, col: 1 });
  });
});

describe('checkProvision', () => {
  let folder: string;
  const text = (pool: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ pools: { web: { app: 'app:app', ...pool } }, routes: [{ path: '/static/', static: 'static' }, { path: '/', pool: 'web' }], ...extra });
  const loadIn = (t: string): ServeConfig => {
    const result = parseConfigText(t, path.join(folder, 'servestack.json'), folder);
    assert.ok(result.config, JSON.stringify(result.diagnostics));
    return result.config;
  };
  const problems = (beforeText: string, nextText: string, defaultPython = process.execPath, mutate?: () => void) => {
    const b = loadIn(beforeText);
    const n = loadIn(nextText);
    mutate?.();
    return checkProvision(n, planConfigChange(b, n, { boundPort: b.listen.port }), { defaultPython }).map((p) => [p.code, p.path, p.message]);
  };

  before(() => {
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack-provision-'));
    fs.writeFileSync(path.join(folder, 'app.py'), 'app = None\n');
    fs.writeFileSync(path.join(folder, 'not-python.txt'), 'just text\n', { mode: 0o644 });
    fs.writeFileSync(path.join(folder, '.env'), 'A=1\n');
  });
  after(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('finds nothing wrong with a change whose interpreter, env file and folders are there', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    assert.deepEqual(problems(text({}), text({ python: process.execPath, envFile: '.env' })), []);
  });

  it('refuses an interpreter that is not on PATH, at the pool\'s "python"', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    const found = problems(text({}), text({ python: 'python3-that-does-not-exist' }));
    assert.equal(found.length, 1);
    assert.deepEqual(found[0].slice(0, 2), ['PYTHON_NOT_FOUND', ['pools', 'web', 'python']]);
    assert.match(found[0][2] as string, /"python3-that-does-not-exist" was not found on PATH; set "python"/);
  });

  it('refuses an interpreter that is a file but not executable', { skip: process.platform === 'win32' }, () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    const found = problems(text({}), text({ python: './not-python.txt' }));
    assert.deepEqual(found.map((f) => f.slice(0, 2)), [['PYTHON_NOT_FOUND', ['pools', 'web', 'python']]]);
    assert.match(found[0][2] as string, /not-python\.txt\) is not executable/);
  });

  it('refuses a default interpreter that cannot be found, at the pool', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    const found = problems(text({}), text({ app: 'app:other' }), 'no-such-python-here');
    assert.deepEqual(found.map((f) => f.slice(0, 2)), [['PYTHON_NOT_FOUND', ['pools', 'web']]]);
    assert.match(found[0][2] as string, /the default interpreter "no-such-python-here" \(the pool sets no "python"\) was not found on PATH/);
  });

  it('does not look at the interpreter of a pool that only changes live', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    assert.deepEqual(problems(text({}), text({ workers: 3 }), 'no-such-python-here'), []);
  });

  it('refuses a static folder removed after the config was checked', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    const found = problems(text({}), text({}, { routes: [{ path: '/assets/', static: 'static' }, { path: '/', pool: 'web' }] }), process.execPath, () => fs.rmSync(path.join(folder, 'static'), { recursive: true }));
    assert.deepEqual(found.map((f) => f.slice(0, 2)), [['CONFIG_STATIC_MISSING', ['routes', 0, 'static']]]);
    assert.match(found[0][2] as string, /the static folder of route "\/assets\/" is gone/);
  });

  it('refuses an env file removed after the config was checked', () => {
    fs.mkdirSync(path.join(folder, 'static'), { recursive: true });
    fs.writeFileSync(path.join(folder, '.env.gone'), 'A=1\n');
    const found = problems(text({}), text({ envFile: '.env.gone' }), process.execPath, () => fs.rmSync(path.join(folder, '.env.gone')));
    assert.deepEqual(found.map((f) => f.slice(0, 2)), [['CONFIG_PATH_MISSING', ['pools', 'web', 'envFile']]]);
    assert.match(found[0][2] as string, /the env file of pool "web" cannot be read .*ENOENT/);
  });

  it('finds an executable on PATH the way spawn does, and says why not', () => {
    const bin = path.dirname(process.execPath);
    assert.deepEqual(findExecutable(path.basename(process.execPath), folder, bin), { ok: true, file: process.execPath });
    assert.deepEqual(findExecutable('node-nope', folder, bin), { ok: false, why: 'was not found on PATH' });
    assert.deepEqual(findExecutable('./missing/python', folder, bin), { ok: false, why: `(${path.join(folder, 'missing/python')}) does not exist` });
  });
});
