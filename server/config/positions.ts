// Where a value sits in the config text: offsets (for editors) and 1-based line/column
// (for people), found through jsonc-parser's tree so a diagnostic underlines the value at
// fault, or its key when the fault is the key itself or the value spans many lines.
import { findNodeAtLocation, type JSONPath, type Node } from 'jsonc-parser';

export interface Span {
  offset: number;
  length: number;
}

export type Anchor = 'value' | 'key';

export interface LineCol {
  line: number; // 1-based
  col: number; // 1-based, in UTF-16 code units like editors
}

/** Offsets ↔ line/column, with line starts computed once per text. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.starts.push(i + 1);
      else if (c === 13 && text.charCodeAt(i + 1) !== 10) this.starts.push(i + 1); // lone CR
    }
  }

  at(offset: number): LineCol {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.starts[lo] + 1 };
  }
}

/**
 * The span of the value at `path`, or of its property key. When the path does not exist
 * (a missing property) the nearest existing ancestor is used. Objects and arrays are
 * pointed at by their key, or by their opening bracket, never by their whole extent.
 */
export function spanOf(root: Node | undefined, path: JSONPath, anchor: Anchor = 'value'): Span {
  if (!root) return { offset: 0, length: 0 };
  let node: Node | undefined;
  let at = path.length;
  while (!(node = findNodeAtLocation(root, path.slice(0, at))) && at > 0) at--;
  node ??= root;
  const missing = at < path.length;
  const key = node.parent?.type === 'property' ? node.parent.children?.[0] : undefined;
  if ((anchor === 'key' || missing || node.type === 'object' || node.type === 'array') && key) {
    return { offset: key.offset, length: key.length };
  }
  if (node.type === 'object' || node.type === 'array') return { offset: node.offset, length: 1 };
  return { offset: node.offset, length: node.length };
}
