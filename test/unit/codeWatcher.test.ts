import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { watchPoolSources } from '../../server/pool/codeWatcher';

/** The files of the first change the watcher reports after `act`, or undefined when none comes within 5 s. */
function firstChange(dir: string, more: Parameters<typeof watchPoolSources>[1], act: () => void): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    const watcher = watchPoolSources(dir, more, (files) => {
      clearTimeout(timer);
      watcher.close();
      resolve(files.map((f) => path.relative(dir, f)).sort());
    }, { debounceMs: 50 });
    const timer = setTimeout(() => { watcher.close(); resolve(undefined); }, 5000);
    act();
  });
}

test('a pool reloads for .py files, template folders (templates/, jinja2/, reported ones) and dev.watch paths, not for static files or swap files', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'servestack-watch-'));
  const outside = mkdtempSync(path.join(os.tmpdir(), 'servestack-watch-tpl-'));
  try {
    for (const d of ['templates', 'shop/jinja2', 'static', 'content']) mkdirSync(path.join(dir, d), { recursive: true });
    const more = { templateDirs: [outside], extra: [path.join(dir, 'content'), path.join(dir, 'site.toml')] };
    const changed = (act: () => void) => firstChange(dir, more, act);
    // The files that must not count are written first, in the same burst: only the others are reported.
    assert.deepEqual(await changed(() => {
      writeFileSync(path.join(dir, 'static', 'site.css'), 'x');
      writeFileSync(path.join(dir, 'templates', '.index.html.swp'), 'x');
      writeFileSync(path.join(dir, 'templates', 'index.html~'), 'x');
      writeFileSync(path.join(dir, 'templates', 'index.html'), 'x');
      writeFileSync(path.join(dir, 'shop', 'jinja2', 'cart.j2'), 'x');
    }), ['shop/jinja2/cart.j2', 'templates/index.html']);
    assert.deepEqual(await changed(() => writeFileSync(path.join(dir, 'content', 'post.md'), 'x')), ['content/post.md']);
    assert.deepEqual(await changed(() => writeFileSync(path.join(dir, 'site.toml'), 'x')), ['site.toml']);
    assert.deepEqual(await changed(() => writeFileSync(path.join(dir, 'app.py'), 'x')), ['app.py']);
    const reported = await firstChange(dir, more, () => writeFileSync(path.join(outside, 'base.html'), 'x'));
    assert.deepEqual(reported, [path.relative(dir, path.join(outside, 'base.html'))]);
    assert.equal(await changed(() => writeFileSync(path.join(dir, 'static', 'more.css'), 'x')), undefined, 'a static file alone reloads nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
