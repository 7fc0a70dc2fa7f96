// Access to schema.json, the one declaration of every config field: its validators (made
// at build time from it, scripts/schemaValidators.mjs, so nothing compiles the schema at
// run time), the validator of one definition, and its defaults (read here so no default
// is repeated in code).
import type { ValidateFunction } from 'ajv';
import schemaJson from './schema.json';
import * as generated from './schemaValidators.generated';

export type SchemaNode = { [key: string]: unknown };

export const CONFIG_SCHEMA: SchemaNode = schemaJson;
const VALIDATORS: Readonly<Record<string, ValidateFunction | undefined>> = generated;

/** The validator for the whole file (ref "") or for one local ref such as "#/definitions/pythonPool". */
export function validatorFor(ref = ''): ValidateFunction {
  const name = ref === '' ? 'root' : /^#\/definitions\/([^/]+)$/.exec(ref)?.[1];
  const v = name === undefined ? undefined : VALIDATORS[name];
  if (!v) throw new Error(`schema.json has no validator for ${ref || 'its root'} (a bug in ServeStack)`);
  return v;
}

/** The node at a JSON pointer in the schema ("/definitions/route"), following local $refs. */
export function schemaAt(pointer: string): SchemaNode {
  let node: unknown = CONFIG_SCHEMA;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = followRef((node as SchemaNode)[key] as SchemaNode | undefined);
    if (node === undefined) throw new Error(`schema.json has nothing at ${pointer} (a bug in ServeStack)`);
  }
  return followRef(node as SchemaNode) as SchemaNode;
}

/** Follows a chain of local `$ref`s ("#/definitions/x") to the node it names. */
export function followRef(node: SchemaNode | undefined): SchemaNode | undefined {
  let seen = 0;
  while (node && typeof node.$ref === 'string') {
    if (++seen > 16) throw new Error(`schema.json: $ref loop at ${node.$ref}`);
    node = schemaAt((node.$ref as string).replace(/^#/, ''));
  }
  return node;
}

/** The `default` declared at a pointer; a missing default is a bug in ServeStack, not in the config. */
export function schemaDefault(pointer: string): unknown {
  const node = schemaAt(pointer);
  if (!('default' in node)) throw new Error(`schema.json declares no default at ${pointer}`);
  return node.default;
}
