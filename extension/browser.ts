// Open a served page in the user's browser. Remote windows (SSH, containers, codespaces,
// code-server) need the port forwarded to where the browser is: asExternalUri does that.
import * as vscode from 'vscode';

export async function openInBrowser(url: string | undefined, pathname = '/'): Promise<boolean> {
  if (!url) return false;
  const target = vscode.Uri.parse(new URL(pathname, url).toString());
  const external = await vscode.env.asExternalUri(target);
  return vscode.env.openExternal(external);
}
