import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readmeWithReference } from '../../scripts/configReference';

const ROOT = path.join(__dirname, '..', '..');

test('the README config reference matches the schema (run `npm run docs` when this fails)', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.equal(readme, readmeWithReference(readme));
});

test('the README opens with the two commands: serve the example and run the tests', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const quickStart = readme.slice(0, readme.indexOf('## What it does'));
  assert.match(quickStart, /npm start/);
  assert.match(quickStart, /npm test/);
  const ci = readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');
  assert.match(ci, /^npm test$/m, '.ci/run runs exactly the README test command');
});
