// Data-driven: every file in test/fixtures/config/diagnostics is a config whose leading
// comments say which diagnostics it must produce and exactly which text each underlines.
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../server/config';

const CASES = join(__dirname, '../fixtures/config/diagnostics');
const PROJECT = join(__dirname, '../fixtures/config/project');

interface Expectation {
  code: string;
  text: string;
  occurrence: number;
}

function expectations(source: string): { list: Expectation[]; bodyStart: number } {
  const list: Expectation[] = [];
  let bodyStart = 0;
  for (const line of source.split('\n')) {
    if (!line.startsWith('//')) break;
    bodyStart += line.length + 1;
    const m = /^\/\/ expect (\w+) at (.+?)(?: #(\d+))?$/.exec(line);
    if (m) list.push({ code: m[1], text: m[2], occurrence: Number(m[3] ?? 1) });
  }
  return { list, bodyStart };
}

function nthIndex(source: string, text: string, from: number, n: number): number {
  if (text === '<end>') return source.length;
  let at = from - 1;
  for (let i = 0; i < n; i++) {
    at = source.indexOf(text, at + 1);
    assert.notEqual(at, -1, `"${text}" occurs fewer than ${n} times below the comments`);
  }
  return at;
}

describe('config diagnostics (fixture cases)', () => {
  for (const name of readdirSync(CASES).filter((f) => f.endsWith('.jsonc')).sort()) {
    test(`${name} reports exactly the expected codes at the expected text`, () => {
      const source = readFileSync(join(CASES, name), 'utf8');
      const { list, bodyStart } = expectations(source);
      const result = parseConfigText(source, join(PROJECT, 'servestack.json'), PROJECT);
      const got = result.diagnostics.map((d) => `${d.code} at ${source.slice(d.offset, d.offset + d.length)} (${d.line}:${d.col}) — ${d.message}`);
      const wanted = list.map((e) => {
        const offset = nthIndex(source, e.text, bodyStart, e.occurrence);
        const found = result.diagnostics.find((d) => d.code === e.code && d.offset === offset && d.length === (e.text === '<end>' ? 0 : e.text.length));
        assert.ok(found, `expected ${e.code} at ${e.text} (offset ${offset}); got:\n${got.join('\n')}`);
        return found;
      });
      const unexpected = result.diagnostics.filter((d) => !wanted.includes(d));
      assert.deepEqual(unexpected.map((d) => `${d.code}: ${d.message}`), [], `unexpected diagnostics in ${name}`);
      const errors = result.diagnostics.some((d) => d.severity === 'error');
      assert.equal(result.config === undefined, errors, 'a config is returned exactly when there is no error');
    });
  }
});
