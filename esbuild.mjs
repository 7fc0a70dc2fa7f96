// One build: the server/CLI bundle (and, once it exists, the extension bundle), with the
// stdlib-only Python runtime copied beside them so dist/ is self-contained; and the
// dashboard page's script (with uPlot, MIT) and uPlot's CSS into media/dashboard, where
// the server and the webview both take the page from.
import * as esbuild from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const watch = process.argv.includes('--watch');

/**
 * V8 holds a script's source as one string, of two bytes a character if any one is not
 * ASCII (3.6 MB instead of 1.8 for the server). esbuild escapes strings, regexes and
 * names (charset ascii), but keeps a few comments as written: those get \u escapes too.
 */
const asciiOnly = {
  name: 'ascii-only',
  setup(build) {
    build.onEnd((result) => {
      const file = build.initialOptions.outfile;
      if (result.errors.length || !file || !existsSync(file)) return;
      const text = readFileSync(file, 'utf8');
      if (/[^\x00-\x7f]/.test(text)) writeFileSync(file, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // jsonc-parser's UMD build hides its requires from the bundler; its ESM build does not.
  mainFields: ['module', 'main'],
  plugins: [asciiOnly],
};

// V8 flags the server runs with (server/nodeFlags.json: the CLI's shebang here, the
// extension's fork, the bench). A young generation of at most 3 × 4 MiB instead of
// 3 × 16 MiB: about 18 MiB less RSS under load. No allocation-site pretenuring: under
// load V8 saw a request's objects alive at a scavenge (64 requests are in flight) and
// began allocating them in the old generation, where they died: 13 MB/s of old-space
// garbage and a full GC every 0.7 s. Without it: no full GC in the run, RSS after load
// 99–109 → 80 MiB, and 2–14 % more requests per second (bench/RESULTS.md).
const nodeFlags = JSON.parse(readFileSync('server/nodeFlags.json', 'utf8')).join(' ');
const entries = [
  { entryPoints: ['server/cli.ts'], outfile: 'dist/cli.js', banner: { js: `#!/usr/bin/env -S node ${nodeFlags}` } },
  // Runs a command pool's program and ends its process group when the server goes.
  { entryPoints: ['server/pool/commandGuard.ts'], outfile: 'dist/commandGuard.js' },
];
if (existsSync('extension/extension.ts')) {
  entries.push({ entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] });
}

// The dashboard page runs in a browser tab and in the editor's webview: one browser bundle, no source map.
const page = {
  entryPoints: ['media/dashboard/src/main.ts'],
  outfile: 'media/dashboard/dashboard.js',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2020',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
};
cpSync('node_modules/uplot/dist/uPlot.min.css', 'media/dashboard/uPlot.min.css');

rmSync('dist/python', { recursive: true, force: true });
mkdirSync('dist/python', { recursive: true });
cpSync('server/python', 'dist/python', { recursive: true, filter: (src) => !src.includes('__pycache__') });

if (watch) {
  for (const e of entries) await (await esbuild.context({ ...common, ...e })).watch();
  await (await esbuild.context(page)).watch();
} else {
  await Promise.all([...entries.map((e) => esbuild.build({ ...common, ...e })), esbuild.build(page)]);
}
