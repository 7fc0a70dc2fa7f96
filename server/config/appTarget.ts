// App targets in Gunicorn's syntax, "module:callable" or "module:factory(args)": the form
// (checked with the schema's own pattern, so the editor and the loader agree) and where the
// module's file would be in the folder ("pkg.wsgi" → pkg/wsgi.py or pkg/wsgi/__init__.py).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { schemaAt } from './schema';
import type { Parsed } from './units';

export interface AppTarget {
  module: string; // dotted, e.g. "pkg.wsgi"
  callable: string; // the name, without a factory call's arguments
  factory: boolean; // "create_app()": call it to get the app
}

const TARGET = new RegExp(schemaAt('/definitions/appTarget').pattern as string);
const EXAMPLES = 'e.g. "app:app", "pkg.wsgi:application" or "app:create_app()"';

/** Why a target does not have the form, with the likely fix spelt out. */
function formMessage(s: string): string {
  const file = /^(.*?)\.py(?::(.*))?$/.exec(s);
  if (file) {
    const module = file[1].replace(/^\.\//, '').replace(/[\\/]/g, '.');
    return `"${s}" names a file; write the module without ".py" and then the app: "${module}:${file[2] || 'app'}"`;
  }
  if (!s.includes(':')) {
    return `"${s}" names no app object; write "${s}:app" (the module, a colon, then the name of the app object), ${EXAMPLES}`;
  }
  const callable = s.slice(s.indexOf(':') + 1);
  if (/^[A-Za-z_]\w*\./.test(callable)) {
    return `"${s}": after ":" comes one name or a factory call such as "create_app()", not an attribute path`;
  }
  return `"${s}" is not of the form "module:callable", ${EXAMPLES}`;
}

export function parseAppTarget(input: unknown): Parsed<AppTarget> {
  if (typeof input !== 'string') return { error: `"app" must be a string "module:callable", ${EXAMPLES}` };
  if (!TARGET.test(input)) return { error: formMessage(input) };
  const colon = input.indexOf(':');
  const rest = input.slice(colon + 1);
  const paren = rest.indexOf('(');
  return {
    value: {
      module: input.slice(0, colon),
      callable: paren < 0 ? rest : rest.slice(0, paren),
      factory: paren >= 0,
    },
  };
}

/** The files, relative to the folder, that would hold a module. */
export function moduleFileCandidates(module: string): string[] {
  const base = module.split('.').join('/');
  return [`${base}.py`, `${base}/__init__.py`];
}

/** The absolute path of the module's file in the folder, if there is one. */
export function findModuleFile(dir: string, module: string): string | undefined {
  return moduleFileCandidates(module)
    .map((rel) => join(dir, rel))
    .find((abs) => existsSync(abs));
}
