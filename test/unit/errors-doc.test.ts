// Every error code is documented in docs/errors.md (as fastify does): a code added to
// server/errors.ts without a row there fails here, and so does a row for a removed code.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../../server/errors';

const doc = readFileSync(join(__dirname, '../../docs/errors.md'), 'utf8');
const documented = [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);

test('docs/errors.md has a table row for every code in ERROR_CODES', () => {
  const missing = Object.keys(ERROR_CODES).filter((code) => !documented.includes(code));
  assert.deepEqual(missing, [], 'add a row "| `CODE` | meaning | typical message | what to do |" to docs/errors.md');
});

test('docs/errors.md documents no code that ERROR_CODES does not have', () => {
  const stale = documented.filter((code) => !(code in ERROR_CODES));
  assert.deepEqual(stale, []);
});

test('docs/errors.md documents each code once', () => {
  const twice = documented.filter((code, i) => documented.indexOf(code) !== i);
  assert.deepEqual(twice, []);
});
