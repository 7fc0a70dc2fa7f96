// What the user is told about a server's troubles, and the actions offered: a server that
// could not start, a crash (Restart, within the crash budget), a pool whose app cannot
// load (open the file and line the server reported). The only module here that shows
// notifications for the sessions.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PoolInfo } from '../server/protocol';
import { CRASH_BUDGET, recordCrash } from './crashBudget';
import type { ServerLog } from './logChannel';
import { errorMessage, ServeError, type ProcessExit } from './serverProcess';

/** The file and line a pool failure names (data from the server, never parsed from its text). */
export function failureLocation(pool: PoolInfo, dir: string): { file: string; line: number } | undefined {
  const d = pool.failureDetail;
  if (!d?.file || !d.line) return undefined;
  return { file: path.isAbsolute(d.file) ? d.file : path.join(dir, d.file), line: d.line };
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0];
}

export class Notifications {
  private readonly crashes = new Map<string, number[]>();

  constructor(private readonly log: ServerLog) {}

  /** Returns the error's code, for the caller's own reactions (e.g. a diagnostic on `listen`). */
  startFailed(folder: vscode.WorkspaceFolder, error: unknown): { code: string; message: string } {
    const code = error instanceof ServeError ? error.code : 'LISTEN_FAILED';
    const message = errorMessage(error);
    this.log.error(`${folder.name}: ${message} [${code}]`);
    const actions = ['Show Logs', ...(code.startsWith('CONFIG_') ? ['Open servestack.json'] : [])];
    void vscode.window.showErrorMessage(`ServeStack could not serve ${folder.name}: ${firstLine(message)}`, ...actions)
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Open servestack.json') void vscode.window.showTextDocument(vscode.Uri.joinPath(folder.uri, 'servestack.json'));
      });
    return { code, message };
  }

  crashed(folder: vscode.WorkspaceFolder, exit: ProcessExit, restart: () => void): void {
    const key = folder.uri.toString();
    const { recent, exhausted } = recordCrash(this.crashes.get(key) ?? [], Date.now());
    this.crashes.set(key, recent);
    const how = exit.signal ?? `exit code ${exit.code}`;
    if (exhausted) {
      void vscode.window.showErrorMessage(
        `The ServeStack server for ${folder.name} crashed ${recent.length} times in the last ${CRASH_BUDGET.windowMs / 60_000} minutes (last: ${how}). It will not be restarted; see the logs, fix the cause, then serve again.`,
        'Show Logs',
      ).then((choice) => choice && this.log.show());
      return;
    }
    void vscode.window.showErrorMessage(`The ServeStack server for ${folder.name} stopped unexpectedly (${how}).`, 'Restart', 'Show Logs')
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Restart') restart();
      });
  }

  poolFailed(folder: vscode.WorkspaceFolder, pool: PoolInfo): void {
    const failure = pool.failure ?? 'the app could not load';
    this.log.error(`${folder.name}: pool ${pool.name}: ${failure}`);
    const location = failureLocation(pool, folder.uri.fsPath);
    const actions = ['Show Logs', ...(location ? [`Open ${path.basename(location.file)}:${location.line}`] : [])];
    void vscode.window.showErrorMessage(`ServeStack: the app of pool '${pool.name}' cannot load: ${firstLine(failure)}`, ...actions)
      .then((choice) => {
        if (choice === 'Show Logs') this.log.show();
        else if (choice && location) {
          const line = Math.max(0, location.line - 1);
          void vscode.window.showTextDocument(vscode.Uri.file(location.file), { selection: new vscode.Range(line, 0, line, 0) });
        }
      });
  }

  untrusted(): void {
    void vscode.window.showWarningMessage(
      'ServeStack does not serve an untrusted workspace: serving runs its Python code. Trust the workspace to serve it; diagnostics on servestack.json work either way.',
      'Manage Workspace Trust',
    ).then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
  }
}
