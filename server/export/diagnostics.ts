// The export's warnings as diagnostics on servestack.json, for the editor: each one on the
// field it names, with its own code and warning severity. Pure (no vscode): the extension
// turns these into its diagnostics beside the config's own.
import path from 'node:path';
import { parseTree } from 'jsonc-parser';
import { DiagnosticList } from '../config/diagnostics';
import type { Diagnostic, ServeConfig } from '../config/types';
import { planExport } from './plan';
import { exportWarnings } from './warnings';
import { parse as parseJsonc } from 'jsonc-parser';

export function exportDiagnostics(text: string, file: string, config: ServeConfig): Diagnostic[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const list = new DiagnosticList(file, body, parseTree(body, [], { allowTrailingComma: true }));
  const raw: unknown = parseJsonc(body, [], { allowTrailingComma: true });
  const plan = planExport(config, path.join(config.dir, 'deploy'));
  for (const w of exportWarnings(plan, raw)) {
    if (w.coveredBy) continue;
    list.add(w.code, `${w.message} (servestack export)`, w.path, { anchor: 'key' });
  }
  return list.items;
}
