// "ServeStack: Trust Local HTTPS": the editor's `servestack trust`. It says what it will do
// and waits for a yes, then adds the local CA to this machine's browser databases (the
// same code as the CLI: server/control/trustVerbs.ts). The system store needs root, so it
// stays a terminal step (`sudo servestack trust --system`), offered, never run from here.
// In a remote window this runs where the extension host runs: the remote machine.
import * as vscode from 'vscode';
import { ServeStackError } from '../server/errors';
import type { ServerLog } from './logChannel';

export const TRUST_COMMAND = 'servestack.trustLocalHttps';

export function registerTrustCommand(context: vscode.ExtensionContext, log: ServerLog): void {
  context.subscriptions.push(vscode.commands.registerCommand(TRUST_COMMAND, () => trustLocalHttps(log)));
}

async function trustLocalHttps(log: ServerLog): Promise<void> {
  // Loaded on first use: the X.509 library is not needed to activate the extension.
  const { trustLocalCa } = await import('../server/control/trustVerbs.js');
  const { caDir } = await import('../server/tls/caStore.js');
  const choice = await vscode.window.showInformationMessage(
    'Trust ServeStack\'s local HTTPS?',
    {
      modal: true,
      detail: `ServeStack's local certificate authority issues the certificates of "tls": "auto". Trusting it adds it to the certificate databases of Chromium, Chrome and Firefox on this machine, so they open ServeStack's https:// pages without a warning.\n\nIts private key stays in ${caDir()}, readable by you alone. The system store (curl, Python) is not changed: run \`sudo servestack trust --system\` in a terminal for that.`,
    },
    'Trust',
  );
  if (choice !== 'Trust') return;
  try {
    const run = await trustLocalCa({ system: false }, (line) => log.info(line));
    const failed = run.outcomes.filter((o) => o.result === 'failed');
    const done = run.outcomes.filter((o) => o.result === 'added' || o.result === 'already');
    if (failed.length) {
      const pick = await vscode.window.showErrorMessage(`ServeStack: ${failed.map((f) => f.store).join(', ')} could not be changed [TRUST_FAILED].`, 'Show Logs');
      if (pick) log.show();
    } else if (done.length === 0) {
      void vscode.window.showWarningMessage('ServeStack: no browser certificate database was found. Start Firefox or Chromium once, then run Trust Local HTTPS again.');
    } else {
      void vscode.window.showInformationMessage(`ServeStack: local HTTPS is trusted in ${done.map((d) => d.store.replace(/ \(.*\)$/, '')).join(', ')}. Restart the browser if it was open.`);
    }
  } catch (error) {
    const message = error instanceof ServeStackError ? error.format() : (error as Error).message;
    log.error(message);
    const pick = await vscode.window.showErrorMessage(`ServeStack: ${message}`, 'Show Logs');
    if (pick) log.show();
  }
}
