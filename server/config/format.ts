// The one-line form of a diagnostic the CLI prints and editors' problem matchers read:
// `servestack.json:LINE:COL: error: MESSAGE [CODE]`.
import { relative } from 'node:path';
import type { Diagnostic } from './types';

export function formatDiagnostic(d: Diagnostic, relativeTo?: string): string {
  const file = relativeTo === undefined ? d.file : relative(relativeTo, d.file) || '.';
  return `${file}:${d.line}:${d.col}: ${d.severity}: ${d.message} [${d.code}]`;
}
