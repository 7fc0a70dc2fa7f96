// Which Python interpreter the workers run: the Python extension's selected interpreter
// when that extension is installed, else the servestack.pythonPath setting, else none
// (the server then uses the pool's `python` field, else python3 on PATH).
import * as vscode from 'vscode';
import { PythonExtension, PVSC_EXTENSION_ID } from '@vscode/python-extension';

export type InterpreterSource = 'python-extension' | 'setting' | 'server';

export interface Interpreter {
  /** undefined: leave the choice to the server. */
  path?: string;
  source: InterpreterSource;
  /** One line for the log: which interpreter runs and why. */
  describe: string;
}

export async function resolveInterpreter(folder: vscode.WorkspaceFolder, log: vscode.LogOutputChannel): Promise<Interpreter> {
  const fromExtension = await fromPythonExtension(folder, log);
  if (fromExtension) {
    return { path: fromExtension, source: 'python-extension', describe: `${fromExtension} (selected in the Python extension)` };
  }
  const setting = vscode.workspace.getConfiguration('servestack', folder.uri).get<string>('pythonPath', '').trim();
  if (setting) {
    const resolved = expandFolderVariable(setting, folder);
    return { path: resolved, source: 'setting', describe: `${resolved} (from the servestack.pythonPath setting)` };
  }
  return { source: 'server', describe: "the pool's `python` field, else python3 on PATH (no interpreter selected in the editor)" };
}

async function fromPythonExtension(folder: vscode.WorkspaceFolder, log: vscode.LogOutputChannel): Promise<string | undefined> {
  if (!vscode.extensions.getExtension(PVSC_EXTENSION_ID)) return undefined;
  try {
    const api = await PythonExtension.api();
    const active = api.environments.getActiveEnvironmentPath(folder.uri);
    const resolved = await api.environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch (error) {
    log.warn(`The Python extension did not give an interpreter: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** Settings may say ${workspaceFolder}/.venv/bin/python, as the Python extension's do. */
function expandFolderVariable(value: string, folder: vscode.WorkspaceFolder): string {
  return value.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
}

/** Fires when the Python extension's selected interpreter changes (no-op without it). */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable> {
  if (!vscode.extensions.getExtension(PVSC_EXTENSION_ID)) return new vscode.Disposable(() => undefined);
  try {
    const api = await PythonExtension.api();
    return api.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    // The extension is installed but failed to activate: nothing to listen to. The reason
    // is logged by resolveInterpreter when an interpreter is needed.
    return new vscode.Disposable(() => undefined);
  }
}
