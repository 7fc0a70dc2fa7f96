// schema.json is the one declaration of every field: these tests keep it complete enough
// for the editor (docs on every field) and in agreement with the parsers in code.
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { CONFIG_SCHEMA, parseAppTarget, parseDuration, parseListen, parseRate, parseSize } from '../../server/config';
import { schemaAt, validatorFor } from '../../server/config/schema';

type Node = Record<string, any>;
const schema = CONFIG_SCHEMA as Node;

function resolveRef(node: Node): Node {
  while (node.$ref) node = node.$ref.replace(/^#\//, '').split('/').reduce((n: Node, k: string) => n[k], schema);
  return node;
}

/** Every declared property in the schema, with its pointer. */
function properties(node: Node = schema, pointer = ''): [string, Node][] {
  const out: [string, Node][] = [];
  for (const [name, prop] of Object.entries<Node>(node.properties ?? {})) {
    out.push([`${pointer}/${name}`, prop]);
    const target = resolveRef(prop);
    if (target.properties) out.push(...properties(target, `${pointer}/${name}`));
  }
  for (const [name, def] of Object.entries<Node>(node === schema ? schema.definitions : {})) {
    if (def.properties) out.push(...properties(def, `/definitions/${name}`));
  }
  return out;
}

function pattern(name: string): RegExp {
  return new RegExp(schema.definitions[name].pattern);
}

describe('schema.json', () => {
  test('is a draft-07 schema', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  });

  test('documents every field with description and markdownDescription (hover in the editor)', () => {
    const undocumented = properties()
      .filter(([, prop]) => {
        const target = resolveRef(prop);
        return !(prop.description ?? target.description) || !(prop.markdownDescription ?? target.markdownDescription);
      })
      .map(([pointer]) => pointer);
    assert.deepEqual([...new Set(undocumented)], []);
  });

  test('gives a default to every optional scalar setting of pools and limits', () => {
    const wanted = ['/interface', '/workers', '/threads', '/timeout', '/maxRequests', '/reload', '/env'].map((p) => `/definitions/pythonPool${p}`);
    wanted.push('/definitions/commandPool/timeout', '/limits/maxBodySize', '/limits/maxHeaderSize', '/limits/maxHeaderLineSize', '/limits/maxHeaderCount', '/limits/headerTimeout', '/limits/queueSize', '/listen');
    const all = new Map(properties());
    for (const pointer of wanted) {
      const prop = all.get(pointer);
      assert.ok(prop, `${pointer} is declared`);
      assert.ok('default' in prop || 'default' in resolveRef(prop), `${pointer} has a default`);
    }
  });

  test('every default is a value the loader accepts', () => {
    const d = schema.definitions;
    const limits = schema.properties.limits.properties;
    assert.equal(parseListen(d.listen.default).error, undefined);
    assert.equal(parseDuration(d.poolTimeout.default).error, undefined);
    assert.equal(parseSize(limits.maxBodySize.default).error, undefined);
    assert.equal(parseSize(limits.maxHeaderSize.default).error, undefined);
    assert.equal(parseSize(limits.maxHeaderLineSize.default).error, undefined);
    assert.equal(parseDuration(limits.headerTimeout.default).error, undefined);
  });

  const SAMPLES = ['10m', '512k', '1g', '1G', '1.5m', '1024', '0', '10x', '10 m', 'm', '-1', '10mb', '', '30s', '500ms', '2m', '1h', '0.5s', '30', 's', '20/s', '100/m', '5r/s', '1000/h', '0/s', '20/d', 'fast', '/s'];

  test('its size, duration and rate patterns accept exactly what the parsers accept', () => {
    for (const s of SAMPLES) {
      assert.equal(pattern('size').test(s), parseSize(s).error === undefined, `size ${JSON.stringify(s)}`);
      assert.equal(pattern('duration').test(s), parseDuration(s).error === undefined, `duration ${JSON.stringify(s)}`);
      assert.equal(pattern('rate').test(s), parseRate(s).error === undefined, `rate ${JSON.stringify(s)}`);
    }
  });

  test('its listen pattern accepts exactly the strings the loader accepts, apart from the port range', () => {
    for (const s of ['127.0.0.1:8080', ':8080', '8080', '[::1]:8080', 'localhost', '::1:8080', 'http://x:1', 'host:', 'a b:80']) {
      assert.equal(pattern('listen').test(s), parseListen(s).error === undefined, `listen ${JSON.stringify(s)}`);
    }
  });

  test('its app target pattern is the one the loader checks', () => {
    for (const s of ['app:app', 'pkg.wsgi:application', 'app:create_app()', "app:create_app('x')", 'app', 'app.py', 'app:app.x', ':app', 'app:']) {
      assert.equal(pattern('appTarget').test(s), parseAppTarget(s).error === undefined, `app ${JSON.stringify(s)}`);
    }
  });
});

describe("schema.json's validators, made at build time", () => {
  test('server/config/schemaValidators.generated.js is what schema.json gives now', async () => {
    const generator = '../../scripts/schemaValidators.mjs'; // plain JS, run by the build
    const { isCurrent } = (await import(generator)) as { isCurrent(): boolean };
    assert.ok(isCurrent(), 'server/config/schemaValidators.generated.js is older than schema.json: run node scripts/schemaValidators.mjs (npm run build does)');
  });

  test("an error's parentSchema is schema.json's own node (the diagnostics tell nodes apart by identity)", async () => {
    const validate = validatorFor();
    assert.equal(validate({ limits: { maxBodySize: 'lots' } }), false);
    const error = (validate.errors ?? []).find((e) => e.keyword === 'pattern');
    assert.equal(error?.instancePath, '/limits/maxBodySize');
    assert.equal(error?.parentSchema, schemaAt('/definitions/size'));
    assert.equal(validatorFor('#/definitions/pythonPool')({ app: 'app:app', workers: 'two' }), false);
    assert.throws(() => validatorFor('#/definitions/nothing'), /no validator for #\/definitions\/nothing/);
  });
});
