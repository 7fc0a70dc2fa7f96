// Open a served page in the user's browser. Remote windows (SSH, containers, codespaces,
// code-server) need the port forwarded to where the browser is: remote.ts does that.
import * as vscode from 'vscode';
import { externalUrl, type Served } from './remote';

export async function openInBrowser(served: Served | string | undefined, pathname = '/'): Promise<boolean> {
  if (!served) return false;
  const target = await externalUrl(typeof served === 'string' ? { url: served } : served, pathname);
  return vscode.env.openExternal(target);
}
