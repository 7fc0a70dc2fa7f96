// Opening served pages from wherever the browser is (Remote-SSH, WSL, dev containers,
// Codespaces, code-server): every URL the editor opens goes through asExternalUri, which
// forwards the port where needed; code-server's answer is moved to /absproxy/ so absolute
// links keep working (remoteUrl.ts says why).
import * as vscode from 'vscode';
import { absproxyUrl, CODE_SERVER_PATH_PREFIX, joinPath, looksLikeCodeServer } from './remoteUrl';

/** Extra `servestack serve` arguments for this window: the /absproxy/ prefix under code-server. */
export function remoteServeArgs(): string[] {
  return vscode.env.uiKind === vscode.UIKind.Web || looksLikeCodeServer(process.env) ? ['--path-prefix', CODE_SERVER_PATH_PREFIX] : [];
}

export interface Served {
  /** The loopback URL the server printed. */
  url: string;
  /** http://NAME.localhost:PORT/ when the folder has a "name". */
  namedUrl?: string;
  /** Whether the server was started with remoteServeArgs()' prefix. */
  absproxy?: boolean;
}

/** The URL to open for `pathname` of a served folder, as the user's browser reaches it. */
export async function externalUrl(served: Served, pathname = '/'): Promise<vscode.Uri> {
  const local = new URL(served.url);
  const port = Number(local.port);
  // A local window opens the name; a remote one forwards the loopback port (asExternalUri knows only localhost names).
  if (served.namedUrl && !vscode.env.remoteName && vscode.env.uiKind === vscode.UIKind.Desktop) {
    return vscode.Uri.parse(joinPath(served.namedUrl, pathname));
  }
  const external = (await vscode.env.asExternalUri(vscode.Uri.parse(`${local.origin}/`))).toString(true);
  const base = (served.absproxy && absproxyUrl(external, port)) || external;
  return vscode.Uri.parse(joinPath(base, pathname), true);
}
