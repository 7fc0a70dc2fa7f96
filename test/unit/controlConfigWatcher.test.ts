// The config watcher: a plain write and an editor's rename-replace each bring one
// onChange with the new text; bursts are debounced; identical text is skipped; errors
// of the callback go to onError and the watcher goes on.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { watchConfigFile, type ConfigWatcher } from '../../server/control/configWatcher';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('control config watcher', () => {
  let tmp: string;
  let file: string;
  let watcher: ConfigWatcher | undefined;
  let changes: string[];
  let errors: Error[];

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'servestack watch '));
    file = path.join(tmp, 'servestack.json');
    fs.writeFileSync(file, '{"v": 0}');
    changes = [];
    errors = [];
  });
  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const start = (debounceMs = 100): void => {
    watcher = watchConfigFile(file, (t) => void changes.push(t), { debounceMs, onError: (e) => errors.push(e) });
  };

  it('reports a plain write once, with the new text', async () => {
    start();
    await sleep(50);
    fs.writeFileSync(file, '{"v": 1}');
    await waitFor(() => changes.length === 1);
    await sleep(300);
    assert.deepEqual(changes, ['{"v": 1}']);
    assert.deepEqual(errors, []);
  });

  it('reports an editor-style save (write a temporary file, rename it over) and keeps watching after it', async () => {
    start();
    await sleep(50);
    const tmpFile = path.join(tmp, '.servestack.json.swp');
    fs.writeFileSync(tmpFile, '{"v": 2}');
    fs.renameSync(tmpFile, file);
    await waitFor(() => changes.length === 1);
    fs.writeFileSync(tmpFile, '{"v": 3}');
    fs.renameSync(tmpFile, file);
    await waitFor(() => changes.length === 2);
    assert.deepEqual(changes, ['{"v": 2}', '{"v": 3}']);
  });

  it('debounces a burst of writes into one change with the last text', async () => {
    start(150);
    await sleep(50);
    for (let i = 1; i <= 10; i++) {
      fs.writeFileSync(file, `{"v": ${i}}`);
      await sleep(5);
    }
    await waitFor(() => changes.length >= 1);
    await sleep(400);
    assert.deepEqual(changes, ['{"v": 10}']);
  });

  it('skips a write of identical text (a touch, a save without edits)', async () => {
    start();
    await sleep(50);
    fs.writeFileSync(file, '{"v": 0}');
    fs.utimesSync(file, new Date(), new Date());
    await sleep(400);
    assert.deepEqual(changes, []);
  });

  it('ignores other files in the folder', async () => {
    start();
    await sleep(50);
    fs.writeFileSync(path.join(tmp, 'app.py'), 'print(1)');
    await sleep(400);
    assert.deepEqual(changes, []);
  });

  it('applies a change made between loading the config and starting the watcher (initialText)', async () => {
    watcher = watchConfigFile(file, (t) => void changes.push(t), { initialText: '{"v": -1}' });
    await waitFor(() => changes.length === 1);
    assert.deepEqual(changes, ['{"v": 0}']);
  });

  it('reports a failing onChange to onError and goes on watching', async () => {
    let calls = 0;
    watcher = watchConfigFile(
      file,
      async () => {
        calls++;
        throw new Error('apply failed');
      },
      (e) => errors.push(e),
    );
    await sleep(50);
    fs.writeFileSync(file, '{"v": 1}');
    await waitFor(() => errors.length === 1);
    fs.writeFileSync(file, '{"v": 2}');
    await waitFor(() => calls === 2);
    assert.equal(errors[0].message, 'apply failed');
  });

  it('never overlaps onChange calls; a change during one is read after it', async () => {
    let active = 0;
    let maxActive = 0;
    watcher = watchConfigFile(
      file,
      async (t) => {
        active++;
        maxActive = Math.max(maxActive, active);
        changes.push(t);
        await sleep(300);
        active--;
      },
      { debounceMs: 20 },
    );
    await sleep(50);
    fs.writeFileSync(file, '{"v": 1}');
    await waitFor(() => changes.length === 1);
    fs.writeFileSync(file, '{"v": 2}');
    await waitFor(() => changes.length === 2);
    assert.equal(maxActive, 1);
    assert.deepEqual(changes, ['{"v": 1}', '{"v": 2}']);
  });

  it('reports nothing after close', async () => {
    start();
    await sleep(50);
    watcher!.close();
    fs.writeFileSync(file, '{"v": 9}');
    await sleep(300);
    assert.deepEqual(changes, []);
  });
});
