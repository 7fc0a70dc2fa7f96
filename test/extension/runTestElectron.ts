// Runs the extension's Mocha suite in a VS Code that @vscode/test-electron downloads: for
// machines that can reach Microsoft's update service. (Here, where they cannot, the same
// suite runs inside code-server: runInCodeServer.mjs.)
//   npm run build && npm run build:tests && node out/test/extension/runTestElectron.js
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '../../..');
  const scratch = mkdtempSync(path.join(tmpdir(), 'servestack-electron-'));
  const workspace = path.join(scratch, 'workspace');
  cpSync(path.join(root, 'test/extension/fixtures/workspace'), workspace, { recursive: true });
  try {
    await runTests({
      version: process.env.VSCODE_VERSION ?? 'stable',
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'out/test/extension/suite/index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', path.join(scratch, 'user-data')],
      extensionTestsEnv: {
        SERVESTACK_TEST_PYTHON: process.env.SERVESTACK_TEST_PYTHON ?? 'python3',
        SERVESTACK_TEST_REPORT: path.join(scratch, 'report.json'),
      },
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
