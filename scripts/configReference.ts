// The README's config reference, generated from the JSON Schema (the one source of
// fields, defaults and docs). `npm run docs` rewrites the README section;
// test/unit/readme.test.ts fails when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

type Node = Record<string, unknown>;
const ROOT = path.resolve(__dirname, '..');
export const START = '<!-- config-reference:start (generated from server/config/schema.json by `npm run docs`) -->';
export const END = '<!-- config-reference:end -->';

function deref(schema: Node, node: Node): Node {
  let current = node;
  while (typeof current.$ref === 'string') {
    const key = current.$ref.replace('#/definitions/', '');
    current = { ...((schema.definitions as Record<string, Node>)[key] ?? {}), ...Object.fromEntries(Object.entries(current).filter(([k]) => k !== '$ref')) };
  }
  return current;
}

function typeOf(schema: Node, node: Node): string {
  const n = deref(schema, node);
  if (Array.isArray(n.enum)) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (Array.isArray(n.allOf) && n.allOf.length === 1 && n.type === undefined) return typeOf(schema, n.allOf[0] as Node);
  const alternatives = (n.oneOf ?? n.anyOf) as Node[] | undefined;
  if (alternatives) return [...new Set(alternatives.map((a) => typeOf(schema, a)))].join(' or ');
  if (Array.isArray(n.type)) return n.type.join(' or ');
  return typeof n.type === 'string' ? n.type : 'object';
}

function describe(node: Node): string {
  const text = String(node.markdownDescription ?? node.description ?? '');
  return text.replace(/\r?\n+/g, ' ').replace(/\|/g, '\\|');
}

function rows(schema: Node, node: Node, prefix: string, out: string[][]): void {
  const n = deref(schema, node);
  const props = n.properties as Record<string, Node> | undefined;
  if (props) {
    for (const [key, child] of Object.entries(props)) {
      if (key === '$schema') continue;
      const c = deref(schema, child);
      const name = prefix ? `${prefix}.${key}` : key;
      const def = c.default === undefined ? '' : `\`${JSON.stringify(c.default)}\``;
      out.push([`\`${name}\``, typeOf(schema, child), def, describe(c)]);
      rows(schema, c, name, out);
      // A field that is a value or an object ("compress": true or { … }): the object's fields too.
      for (const alt of ((c.anyOf ?? c.oneOf) as Node[] | undefined) ?? []) if (deref(schema, alt).properties) rows(schema, alt, name, out);
    }
  }
  const additional = n.additionalProperties;
  if (additional && typeof additional === 'object') {
    const a = deref(schema, additional as Node);
    const alternatives = (a.oneOf ?? a.anyOf) as Node[] | undefined;
    if (alternatives && prefix === 'pools') {
      for (const alt of alternatives) {
        const d = deref(schema, alt);
        out.push([`\`pools.<name>\` (${String((d.required as string[] | undefined)?.[0] ?? 'pool')})`, 'object', '', describe(d)]);
        rows(schema, d, 'pools.<name>', out);
      }
    } else if (Object.keys(a).length > 0 && (a.properties || a.oneOf)) {
      rows(schema, a, `${prefix}.<name>`, out);
    }
  }
  if (n.type === 'array' && n.items) rows(schema, n.items as Node, `${prefix}[]`, out);
}

export function configReference(): string {
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'server', 'config', 'schema.json'), 'utf8')) as Node;
  const table: string[][] = [];
  rows(schema, schema, '', table);
  const seen = new Set<string>();
  const unique = table.filter((r) => (seen.has(r[0]) ? false : (seen.add(r[0]), true)));
  const lines = ['| field | type | default | meaning |', '| --- | --- | --- | --- |', ...unique.map((r) => `| ${r.join(' | ')} |`)];
  return `${START}\n${lines.join('\n')}\n${END}`;
}

export function readmeWithReference(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < 0) throw new Error('README.md has no config-reference markers');
  return readme.slice(0, start) + configReference() + readme.slice(end + END.length);
}

if (require.main === module) {
  const file = path.join(ROOT, 'README.md');
  writeFileSync(file, readmeWithReference(readFileSync(file, 'utf8')));
  console.log('README.md config reference updated');
}
