// Builds the extension's tests into out/ (gitignored): the Mocha suite (one bundle per
// file, `vscode` and `mocha` left to the editor's extension host) and the
// @vscode/test-electron launcher. The extension itself is built by esbuild.mjs.
import * as esbuild from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const suite = path.join(root, 'test/extension/suite');
const out = path.join(root, 'out/test/extension');
rmSync(out, { recursive: true, force: true });

// jsonc-parser's UMD build hides its requires from esbuild: take its ESM build.
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: 'inline', logLevel: 'warning', mainFields: ['module', 'main'] };
await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: readdirSync(suite).filter((f) => f === 'index.ts' || f.endsWith('.test.ts')).map((f) => path.join(suite, f)),
    outdir: path.join(out, 'suite'),
    external: ['vscode', 'mocha'],
  }),
  esbuild.build({
    ...common,
    entryPoints: [path.join(root, 'test/extension/runTestElectron.ts')],
    outfile: path.join(out, 'runTestElectron.js'),
    external: ['@vscode/test-electron'],
  }),
]);
