// The `servestack` task type: `"type": "servestack"` in tasks.json (or the provided
// "servestack: serve" task) runs the bundled CLI's `servestack serve` for a folder, as a
// background task whose problem matcher ($servestack, package.json) ends its start-up on
// the server's stable "ServeStack ready: URL" line, so `"preLaunchTask"` waits for a
// server that listens. Config errors come out as file:line:col and land in Problems.
// The task's server is the terminal's, not the Workers view's: it stops with the task.
import * as path from 'node:path';
import * as vscode from 'vscode';

export const TASK_TYPE = 'servestack';

export interface ServeStackTaskDefinition extends vscode.TaskDefinition {
  type: typeof TASK_TYPE;
  /** The folder to serve, relative to the workspace folder (default: the workspace folder). */
  folder?: string;
  /** More `servestack serve` arguments, e.g. ["--port", "8000"]. */
  args?: string[];
}

export class ServeStackTaskProvider implements vscode.TaskProvider {
  constructor(private readonly serverJs: string) {}

  provideTasks(): vscode.Task[] {
    return (vscode.workspace.workspaceFolders ?? [])
      .filter((folder) => folder.uri.scheme === 'file')
      .map((folder) => this.build({ type: TASK_TYPE }, folder, 'serve'));
  }

  resolveTask(task: vscode.Task): vscode.Task | undefined {
    const definition = task.definition as ServeStackTaskDefinition;
    if (definition.type !== TASK_TYPE) return undefined;
    const scope = typeof task.scope === 'object' ? task.scope : vscode.workspace.workspaceFolders?.[0];
    if (!scope) return undefined;
    return this.build(definition, scope, task.name, task.problemMatchers);
  }

  private build(definition: ServeStackTaskDefinition, folder: vscode.WorkspaceFolder, name: string, matchers?: string[]): vscode.Task {
    const dir = definition.folder ? path.resolve(folder.uri.fsPath, definition.folder) : folder.uri.fsPath;
    const args = [this.serverJs, 'serve', dir, ...(definition.args ?? []).map(String)];
    const python = vscode.workspace.getConfiguration('servestack', folder.uri).get<string>('pythonPath', '');
    if (python && !args.includes('--python')) args.push('--python', python);
    // The extension host's own runtime, as a plain Node (the fork in serverProcess.ts does the same).
    const execution = new vscode.ProcessExecution(process.execPath, args, { cwd: dir, env: { ELECTRON_RUN_AS_NODE: '1' } });
    const task = new vscode.Task(definition, folder, name, TASK_TYPE, execution, matchers?.length ? matchers : ['$servestack']);
    task.isBackground = true;
    task.presentationOptions = { reveal: vscode.TaskRevealKind.Silent, panel: vscode.TaskPanelKind.Dedicated };
    return task;
  }
}

export function registerTasks(context: vscode.ExtensionContext, serverJs: string): void {
  context.subscriptions.push(vscode.tasks.registerTaskProvider(TASK_TYPE, new ServeStackTaskProvider(serverJs)));
}
