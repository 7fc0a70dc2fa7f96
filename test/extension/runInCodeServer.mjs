#!/usr/bin/env node
// Runs the extension in a real VS Code on machines that cannot download one: code-server
// (VS Code 1.96 from the npm registry) driven by playwright-core in Debian's chromium, as
// shared/VSCODE-TESTING.md describes.
//   1. the Mocha suite (test/extension/suite, unchanged from @vscode/test-electron) through
//      the workbench's test mode (`payload` with extensionDevelopmentPath/extensionTestsPath);
//   2. the user scenarios (test/e2e/*.scenario.mjs) with Playwright, in one more code-server
//      with the extension installed, on throwaway copies of the example apps.
// Each phase gets a fresh user-data and extensions folder and a free loopback port, kills
// only the process groups it started, and checks that no process is left running in the
// workspace copy. Prints `N passed, N failed` and exits non-zero on a failure.
//   node test/extension/runInCodeServer.mjs [--suite] [--e2e]   (both by default)
// Needs `npm run build && npm run build:tests` first (npm run test:extension does all).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE = process.env.CODE_SERVER_CACHE ?? path.join(homedir(), '.cache', 'servestack-code-server');
const MARKER = path.join(CACHE, '.installed-4.96.4');
const ENTRY = path.join(CACHE, 'node_modules/code-server/out/node/entry.js');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PYTHON = process.env.SERVESTACK_TEST_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const SUITE_TIMEOUT_MS = 5 * 60_000;
/** Workbench console lines that say nothing about the suite (kept in suite-output.txt). */
const WORKBENCH_NOISE = /open-vsx\.org|ENOTFOUND|connection token|Creating a socket|\[Service Worker\]|Updating additional builtin|Long running operations during shutdown|Creation of workbench contribution/;

const args = new Set(process.argv.slice(2));
const runSuite = args.has('--suite') || !args.has('--e2e');
const runE2e = args.has('--e2e') || !args.has('--suite');

const totals = { passed: 0, failed: 0, skipped: 0 };
const started = Date.now();
/** Process groups this run started (code-server, chromium), killed on exit whatever happens. */
const groups = new Set();

function log(...parts) {
  console.log(format(...parts));
}

async function main() {
  for (const file of ['dist/extension.js', 'dist/cli.js', 'out/test/extension/suite/index.js']) {
    if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run npm run build && npm run build:tests first`);
  }
  ensureCodeServer();
  const { chromium } = await import(pathToFileURL(path.join(ROOT, 'node_modules/playwright-core/index.mjs')).href);
  // Only what this run writes: other runs (the integration tests' browser shots) keep theirs.
  const scenarioNames = new Set(readdirSync(path.join(ROOT, 'test/e2e')).filter((f) => f.endsWith('.scenario.mjs')).map((f) => f.replace(/\.scenario\.mjs$/, '')));
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const entry of readdirSync(ARTIFACTS)) {
    if (scenarioNames.has(entry) || /^(code-server-.*\.log|suite-.*)$/.test(entry)) rmSync(path.join(ARTIFACTS, entry), { recursive: true, force: true });
  }
  const scratch = mkdtempSync(path.join(tmpdir(), 'servestack-vscode-'));
  const browser = await launchBrowser(chromium);
  try {
    if (runSuite) await suitePhase(browser.browser, scratch);
    if (runE2e) await e2ePhase(browser.browser, scratch);
  } finally {
    await browser.browser.close().catch(() => undefined);
    await stopGroup(browser.pid, 'chromium');
    rmSync(scratch, { recursive: true, force: true });
  }
}

// ── Installation and processes ─────────────────────────────────────────────────────
function ensureCodeServer() {
  if (existsSync(MARKER) && existsSync(CHROMIUM) && spawnSync('rg', ['--version']).status === 0) return;
  log(`code-server, chromium or ripgrep is missing: running install-code-server.sh (about a minute from nothing)…`);
  const result = spawnSync('bash', [path.join(ROOT, 'test/extension/install-code-server.sh')], { stdio: 'inherit', env: { ...process.env, CODE_SERVER_CACHE: CACHE } });
  if (result.status !== 0 || !existsSync(MARKER)) throw new Error('installing code-server failed (see above)');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false; // ESRCH: no process left in the group
  }
}

/** SIGTERM to a process group we started, SIGKILL after 5 s. */
async function stopGroup(pgid, name) {
  if (!pgid || !groupAlive(pgid)) { groups.delete(pgid); return; }
  try { process.kill(-pgid, 'SIGTERM'); } catch { /* already gone */ }
  const deadline = Date.now() + 5000;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pgid)) {
    log(`  ${name} (group ${pgid}) did not stop within 5 s: SIGKILL`);
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
  groups.delete(pgid);
}

function killGroupsNow() {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

async function launchBrowser(chromium) {
  const server = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
  });
  const pid = server.process().pid;
  groups.add(pid);
  const browser = await chromium.connect(server.wsEndpoint());
  return { browser, pid, server };
}

/** Processes (other than ours) whose working directory is inside `dir`. */
function processesIn(dir) {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cwd;
    try { cwd = readlinkSync(`/proc/${entry}/cwd`); } catch { continue; /* gone, or not ours to read */ }
    if (cwd === dir || cwd.startsWith(dir + path.sep)) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(); } catch { /* gone */ }
      found.push({ pid: Number(entry), cmd });
    }
  }
  return found;
}

async function checkNoOrphans(dir, label) {
  const deadline = Date.now() + 5000;
  let left = processesIn(dir);
  while (left.length && Date.now() < deadline) { await sleep(200); left = processesIn(dir); }
  if (left.length) {
    totals.failed++;
    log(`  ✗ ${label}: processes still running in ${dir}:`);
    for (const p of left) log(`      ${p.pid} ${p.cmd}`);
  } else {
    totals.passed++;
    log(`  ✓ ${label}: no process left running in the workspace copy`);
  }
}

function writeSettings(userDataDir, extra) {
  const dir = path.join(userDataDir, 'User');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'remote.autoForwardPorts': false,
    'telemetry.telemetryLevel': 'off',
    'workbench.tips.enabled': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'files.refactoring.autoSave': true,
    'servestack.pythonPath': PYTHON,
    'servestack.openBrowser': false,
    ...extra,
  }, null, 2));
}

/** Starts code-server as a process-group leader; resolves once /healthz answers. */
async function startCodeServer({ name, workspace, userDataDir, extensionsDir, trusted, env = {} }) {
  const port = await freePort();
  const logFile = path.join(ARTIFACTS, `code-server-${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, [
    ENTRY, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir,
    '--disable-telemetry', '--disable-update-check',
    ...(trusted ? ['--disable-workspace-trust'] : []),
    workspace,
  ], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  groups.add(child.pid);
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) break;
    } catch { /* not listening yet */ }
    if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}); see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz within 60 s; see ${logFile}`);
    await sleep(250);
  }
  return { port, pid: child.pid, url: `http://127.0.0.1:${port}` };
}

// ── Phase 1: the Mocha suite, unchanged, through the workbench's test mode ──────────
async function suitePhase(browser, scratch) {
  log('\n== Extension suite (Mocha, in code-server) ==');
  const t0 = Date.now();
  const workspace = path.join(scratch, 'suite', 'workspace');
  cpSync(path.join(ROOT, 'test/extension/fixtures/workspace'), workspace, { recursive: true });
  const userDataDir = path.join(scratch, 'suite', 'user-data');
  const extensionsDir = path.join(scratch, 'suite', 'extensions');
  mkdirSync(extensionsDir, { recursive: true });
  writeSettings(userDataDir, {});
  const reportFile = path.join(scratch, 'suite', 'report.json');
  const server = await startCodeServer({
    name: 'suite', workspace, userDataDir, extensionsDir, trusted: true,
    env: { SERVESTACK_TEST_PYTHON: PYTHON, SERVESTACK_TEST_REPORT: reportFile, ...(process.env.SERVESTACK_TEST_GREP ? { SERVESTACK_TEST_GREP: process.env.SERVESTACK_TEST_GREP } : {}) },
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  let exitCode;
  const output = [];
  await page.exposeFunction('codeAutomationExit', (code) => { exitCode = code; });
  await page.exposeFunction('codeAutomationLog', (type, logArgs) => {
    const line = format(...(Array.isArray(logArgs) ? logArgs : [logArgs])).replace(/%c/g, '');
    output.push(line);
    if (!WORKBENCH_NOISE.test(line)) log(line.replace(/^/gm, '  '));
  });
  const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', remote(ROOT)],
    ['extensionTestsPath', remote(path.join(ROOT, 'out/test/extension/suite/index.js'))],
  ]);
  try {
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
    const deadline = Date.now() + SUITE_TIMEOUT_MS;
    while (exitCode === undefined && Date.now() < deadline) await sleep(250);
    await page.screenshot({ path: path.join(ARTIFACTS, 'suite-end.png') }).catch(() => undefined);
  } finally {
    await context.close().catch(() => undefined);
    await stopGroup(server.pid, 'code-server (suite)');
  }
  writeFileSync(path.join(ARTIFACTS, 'suite-output.txt'), output.join('\n'));
  let report;
  try { report = JSON.parse(readFileSync(reportFile, 'utf8')); } catch { report = undefined; /* the suite did not get to write it */ }
  if (report) {
    totals.passed += report.passed;
    totals.failed += report.failed;
    totals.skipped += report.pending;
    for (const t of report.tests.filter((x) => x.state === 'failed')) log(`  ✗ ${t.title}\n${String(t.error).replace(/^/gm, '      ')}`);
  }
  if (exitCode === undefined) {
    totals.failed++;
    log(`  ✗ the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s`);
  } else if (exitCode !== 0 && (!report || report.failed === 0)) {
    totals.failed++;
    log(`  ✗ the suite exited with ${exitCode} without a report of its failures`);
  }
  log(`  suite: ${report ? `${report.passed} passed, ${report.failed} failed in ${(report.durationMs / 1000).toFixed(1)} s` : 'no report'}; phase ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await checkNoOrphans(workspace, 'suite');
}

// ── Phase 2: what a user sees, with Playwright ─────────────────────────────────────
function flaskMissingReason() {
  const check = spawnSync(PYTHON, ['-c', 'import flask'], { encoding: 'utf8' });
  if (check.error) return `${PYTHON} cannot be run (${check.error.message})`;
  if (check.status !== 0) return `${PYTHON} cannot import flask (apt-get install python3-flask)`;
  if (!existsSync(path.join(ROOT, 'examples/flask-app/app.py'))) return 'examples/flask-app is missing';
  return undefined;
}

/** Package the VSIX once (what users install), with vsce as `npm run package` does. */
let vsixPath;
function packageVsix(scratch) {
  if (vsixPath) return vsixPath;
  const out = path.join(scratch, 'servestack.vsix');
  const t0 = Date.now();
  const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/@vscode/vsce/vsce'), 'package', '--no-dependencies',
    '--allow-missing-repository', '--no-rewrite-relative-links', '--out', out], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`vsce package failed:\n${result.stdout}${result.stderr}`);
  log(`  packaged the VSIX in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  vsixPath = out;
  return out;
}

/** Install the VSIX into a fresh extensions folder, offline, as a user would. */
function installExtension(scratch, extensionsDir, userDataDir) {
  const result = spawnSync(process.execPath, [ENTRY, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir,
    '--install-extension', packageVsix(scratch)], { encoding: 'utf8' });
  if (result.status !== 0 || !readdirSync(extensionsDir).some((d) => d.startsWith('servestack.servestack-'))) {
    throw new Error(`installing the VSIX failed:\n${result.stdout}${result.stderr}`);
  }
}

async function e2ePhase(browser, scratch) {
  log('\n== User scenarios (Playwright, in code-server) ==');
  const only = process.env.SERVESTACK_E2E; // e.g. SERVESTACK_E2E=multiroot runs that scenario alone
  const scenarios = readdirSync(path.join(ROOT, 'test/e2e')).filter((f) => f.endsWith('.scenario.mjs') && (!only || f.startsWith(`${only}.`))).sort();
  for (const file of scenarios) {
    const scenario = await import(pathToFileURL(path.join(ROOT, 'test/e2e', file)).href);
    const name = file.replace(/\.scenario\.mjs$/, '');
    const skip = scenario.needsFlask ? flaskMissingReason() : undefined;
    if (skip) {
      totals.skipped += scenario.steps.length;
      log(`  - ${name}: skipped (${skip})`);
      continue;
    }
    await runScenario(browser, scratch, name, scenario);
  }
}

async function runScenario(browser, scratch, name, scenario) {
  const t0 = Date.now();
  const base = path.join(scratch, `e2e-${name}`);
  const workspace = path.join(base, scenario.workspaceName ?? 'workspace');
  const userDataDir = path.join(base, 'user-data');
  const extensionsDir = path.join(base, 'extensions');
  const shots = path.join(ARTIFACTS, name);
  mkdirSync(shots, { recursive: true });
  const appPort = await freePort();
  // A scenario may open a multi-root .code-workspace file instead of the folder.
  const prepared = (await scenario.prepare({ root: ROOT, workspace, appPort })) ?? {};
  const open = prepared.workspaceFile ? `workspace=${encodeURIComponent(prepared.workspaceFile)}` : `folder=${encodeURIComponent(workspace)}`;
  mkdirSync(extensionsDir, { recursive: true });
  writeSettings(userDataDir, scenario.settings ?? {});
  installExtension(scratch, extensionsDir, userDataDir);
  const server = await startCodeServer({ name, workspace: prepared.workspaceFile ?? workspace, userDataDir, extensionsDir, trusted: false });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const { Workbench } = await import(pathToFileURL(path.join(ROOT, 'test/e2e/workbench.mjs')).href);
  const wb = new Workbench(page, { codeServerUrl: server.url, workspace });
  const ctx = { page, context, wb, workspace, appPort, root: ROOT, codeServerUrl: server.url, state: { shot: (label) => path.join(shots, `${label}.png`) } };
  let failedAt;
  let n = 0;
  try {
    await page.goto(`${server.url}/?${open}`);
    for (const step of scenario.steps) {
      n++;
      const label = `${String(n).padStart(2, '0')}-${step.name.replace(/[^\w]+/g, '-').replace(/^-|-$/g, '').toLowerCase()}`;
      if (failedAt) {
        totals.skipped++;
        log(`  - ${step.name} (skipped: an earlier step failed)`);
        continue;
      }
      const s0 = Date.now();
      try {
        await step.run(ctx);
        await page.screenshot({ path: path.join(shots, `${label}.png`) });
        totals.passed++;
        log(`  ✓ ${step.name} (${Date.now() - s0} ms)`);
      } catch (error) {
        failedAt = step.name;
        totals.failed++;
        await page.screenshot({ path: path.join(shots, `${label}-FAILED.png`) }).catch(() => undefined);
        log(`  ✗ ${step.name} (${Date.now() - s0} ms)\n${String(error?.stack ?? error).replace(/^/gm, '      ')}`);
      }
    }
  } finally {
    await context.close().catch(() => undefined);
    await stopGroup(server.pid, `code-server (${name})`);
  }
  log(`  ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await checkNoOrphans(workspace, name);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => { killGroupsNow(); process.exit(130); });
}

main().catch((error) => {
  totals.failed++;
  log(`\nThe run failed: ${error?.stack ?? error}`);
}).finally(() => {
  killGroupsNow();
  log(`\nExtension tests in code-server: ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${path.relative(process.cwd(), ARTIFACTS) || '.'}/`);
  log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
  process.exitCode = totals.failed > 0 ? 1 : 0;
});
