// Access to schema.json, the one declaration of every config field: its validator (ajv,
// compiled once and lazily, since the editor validates on every keystroke), sub-validators
// for one definition, and its defaults (read here so no default is repeated in code).
import Ajv, { type ValidateFunction } from 'ajv';
import schemaJson from './schema.json';

export type SchemaNode = { [key: string]: unknown };

export const CONFIG_SCHEMA: SchemaNode = schemaJson;
const SCHEMA_ID = CONFIG_SCHEMA.$id as string;

/** Keywords the editor understands (VS Code's JSON language service) and validators ignore. */
const EDITOR_KEYWORDS = [
  'markdownDescription',
  'patternErrorMessage',
  'errorMessage',
  'defaultSnippets',
  'enumDescriptions',
  'markdownEnumDescriptions',
];

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

function compiler(): Ajv {
  if (!ajv) {
    // verbose: errors carry parentSchema, which gives known property names and messages.
    // strictRequired off: the route's oneOf names properties declared beside it.
    ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strictRequired: false });
    ajv.addVocabulary(EDITOR_KEYWORDS);
    ajv.addSchema(CONFIG_SCHEMA);
  }
  return ajv;
}

/** The validator for the whole file (ref "") or for one local ref such as "#/definitions/pythonPool". */
export function validatorFor(ref = ''): ValidateFunction {
  let v = validators.get(ref);
  if (!v) {
    const found = compiler().getSchema(SCHEMA_ID + ref);
    if (!found) throw new Error(`schema.json has no ${ref || 'root'} (a bug in ServeStack)`);
    v = found;
    validators.set(ref, v);
  }
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
