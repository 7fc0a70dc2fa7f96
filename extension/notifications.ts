// What the user is told about a server's troubles, and the actions offered: a server that
// could not start, a crash (Restart, within the crash budget), a pool whose app cannot
// load (open the file and line the server reported). The only module here that shows
// notifications for the sessions.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ConfigApplyResult, PoolInfo } from '../server/protocol';
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
  /** The restart-only changes already offered per session (a new session starts with none). */
  private readonly restartOffered = new WeakMap<object, string>();

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

  /**
   * A field only a restart applies (listen, tls): offer the restart, once per distinct
   * request (each later save reports it again until the server restarts). A change the
   * server refused while provisioning it is shown too: the editor's own diagnostics
   * cannot see it (an interpreter missing from PATH, a folder removed since).
   */
  configApplied(folder: vscode.WorkspaceFolder, session: { url?: string }, result: ConfigApplyResult, restart: () => Thenable<unknown> | Promise<unknown>): void {
    const configFile = vscode.Uri.joinPath(folder.uri, 'servestack.json');
    if (!result.applied) {
      const refused = result.diagnostics.find((d) => d.severity === 'error' && d.data?.provision === true);
      if (!refused) return; // the Problems panel shows the checks' own diagnostics
      void vscode.window.showErrorMessage(`ServeStack did not apply the change to servestack.json (line ${refused.line}): ${firstLine(refused.message)}. The running config keeps serving.`, 'Open servestack.json', 'Show Logs')
        .then((choice) => {
          if (choice === 'Show Logs') this.log.show();
          if (choice === 'Open servestack.json') {
            const line = Math.max(0, refused.line - 1);
            void vscode.window.showTextDocument(configFile, { selection: new vscode.Range(line, 0, line, 0) });
          }
        });
      return;
    }
    const pending = result.restartNeeded ?? [];
    const key = pending.map((r) => `${r.field}=${r.wanted}`).join('\0');
    if (key === (this.restartOffered.get(session) ?? '')) return;
    this.restartOffered.set(session, key);
    if (pending.length === 0) return;
    const fields = pending.map((r) => `"${r.field}" (line ${r.line}: ${r.wanted})`).join(', ');
    void vscode.window.showWarningMessage(`ServeStack: ${fields} changed in servestack.json of ${folder.name}; restart the server to apply it. It keeps serving at ${session.url ?? 'its address'} until then.`, 'Restart Server', 'Show Logs')
      .then(async (choice) => {
        if (choice === 'Show Logs') this.log.show();
        if (choice === 'Restart Server') await restart();
      });
  }

  untrusted(): void {
    void vscode.window.showWarningMessage(
      'ServeStack does not serve an untrusted workspace: serving runs its Python code. Trust the workspace to serve it; diagnostics on servestack.json work either way.',
      'Manage Workspace Trust',
    ).then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
  }
}
