// The Mocha entry the editor's test mode loads (`extensionTestsPath`): the same file runs
// under @vscode/test-electron and inside code-server. It adds every *.test.js beside it,
// runs them, optionally writes a JSON report (SERVESTACK_TEST_REPORT), and rejects when a
// test failed, which the editor turns into a non-zero exit code.
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export interface SuiteReport {
  passed: number;
  failed: number;
  pending: number;
  durationMs: number;
  tests: { title: string; state: 'passed' | 'failed' | 'pending'; durationMs?: number; error?: string }[];
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, reporter: 'spec', timeout: 60_000, slow: 5_000 });
  const grep = process.env.SERVESTACK_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const file of readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort()) mocha.addFile(path.join(__dirname, file));

  const report: SuiteReport = { passed: 0, failed: 0, pending: 0, durationMs: 0, tests: [] };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      report.durationMs = Date.now() - started;
      const out = process.env.SERVESTACK_TEST_REPORT;
      if (out) writeFileSync(out, JSON.stringify(report, null, 2));
      if (failures > 0) reject(new Error(`${failures} of ${report.passed + report.failed} tests failed`));
      else resolve();
    });
    runner.on('pass', (test) => { report.passed++; report.tests.push({ title: test.fullTitle(), state: 'passed', durationMs: test.duration }); });
    runner.on('fail', (test, error: Error) => {
      report.failed++;
      report.tests.push({ title: test.fullTitle(), state: 'failed', durationMs: test.duration, error: error?.stack ?? String(error) });
    });
    runner.on('pending', (test) => { report.pending++; report.tests.push({ title: test.fullTitle(), state: 'pending' }); });
  });
}
