// Collects the diagnostics of one load. Callers name a place by its JSON path (or give a
// span for syntax errors); this turns it into offsets and line/columns once, so every
// check reports the same way. A load without text (a detected app) points at 1:1.
import type { JSONPath, Node } from 'jsonc-parser';
import type { ErrorCode } from '../errors';
import type { Diagnostic, Severity } from './types';
import { LineIndex, spanOf, type Anchor, type Span } from './positions';

/** Codes that never block serving: the config still works, but likely not as meant. */
const WARNING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONFIG_UNKNOWN_FIELD',
  'CONFIG_POOL_UNUSED',
  'CONFIG_BALANCE_UNUSED',
  // The module may be installed in the environment rather than be a file in the folder.
  'CONFIG_APP_MODULE_MISSING',
  // What `servestack export` cannot carry over exactly: production does something else.
  'EXPORT_RELOAD',
  'EXPORT_DEBUG',
  'EXPORT_RATE_LIMIT',
  'EXPORT_HEADER_COUNT',
  'EXPORT_QUEUE_SIZE',
  'EXPORT_NO_TIMEOUT',
  'EXPORT_INTERFACE',
  'EXPORT_PRECOMPRESSED',
  'EXPORT_TLS',
  'EXPORT_WEBSOCKET',
  'IMPORT_UNSUPPORTED',
]);

export function severityOf(code: ErrorCode): Severity {
  return WARNING_CODES.has(code) ? 'warning' : 'error';
}

export interface Report {
  data?: Record<string, unknown>;
  anchor?: Anchor;
}

export class DiagnosticList {
  readonly items: Diagnostic[] = [];
  private readonly lines: LineIndex;

  constructor(
    readonly file: string,
    text = '',
    private readonly root?: Node,
  ) {
    this.lines = new LineIndex(text);
  }

  /** A diagnostic at the value (or key) at `path`; `undefined` points at the file's start. */
  add(code: ErrorCode, message: string, path: JSONPath | undefined, report: Report = {}): void {
    const span = path ? spanOf(this.root, path, report.anchor) : { offset: 0, length: 0 };
    this.addSpan(code, message, span, report.data);
  }

  addSpan(code: ErrorCode, message: string, span: Span, data?: Record<string, unknown>): void {
    const start = this.lines.at(span.offset);
    const end = this.lines.at(span.offset + span.length);
    this.items.push({
      file: this.file,
      line: start.line,
      col: start.col,
      endLine: end.line,
      endCol: end.col,
      offset: span.offset,
      length: span.length,
      severity: severityOf(code),
      code,
      message,
      ...(data ? { data } : {}),
    });
  }

  hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}
