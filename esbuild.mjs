// One build: the server/CLI bundle (and, once it exists, the extension bundle), with the
// stdlib-only Python runtime copied beside them so dist/ is self-contained; and the
// dashboard page's script (with uPlot, MIT) and uPlot's CSS into media/dashboard, where
// the server and the webview both take the page from.
import * as esbuild from 'esbuild';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeValidators } from './scripts/schemaValidators.mjs';

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

// How the server's Node starts (server/nodeLaunch.json; why: server/launch.ts). The CLI's
// first line sets the malloc variable and, as serverLaunchEnv does for the extension, what
// it was before (SERVESTACK_WAS_<NAME>), so the server can give its workers the user's.
const launch = JSON.parse(readFileSync('server/nodeLaunch.json', 'utf8'));
const launchEnv = Object.entries(launch.env).flatMap(([name, value]) => [`${name}=${value}`, `SERVESTACK_WAS_${name}=\${${name}}`]);
const shebang = `#!/usr/bin/env -S ${[...launchEnv, 'node', ...launch.nodeFlags].join(' ')}`;
const entries = [
  { entryPoints: ['server/cli.ts'], outfile: 'dist/cli.js', banner: { js: shebang } },
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

// schema.json's validators as code (a schema edit under --watch needs a rebuild for them).
writeValidators();

rmSync('dist/python', { recursive: true, force: true });
mkdirSync('dist/python', { recursive: true });
cpSync('server/python', 'dist/python', { recursive: true, filter: (src) => !src.includes('__pycache__') });

if (watch) {
  for (const e of entries) await (await esbuild.context({ ...common, ...e })).watch();
  await (await esbuild.context(page)).watch();
} else {
  await Promise.all([...entries.map((e) => esbuild.build({ ...common, ...e })), esbuild.build(page)]);
}
// The CLI runs by its first line (`dist/cli.js serve`, npm's bin link): make it executable.
if (existsSync('dist/cli.js')) chmodSync('dist/cli.js', 0o755);
