// Validates the raw config against schema.json and turns ajv's errors into diagnostics a
// person can act on: one message per fault, at the value at fault, naming the field the
// way the config does. Two shapes need care because ajv reports every alternative:
//  - anyOf (a pool is a Python pool or a command pool; tls is "auto" or files): the
//    alternative the value was evidently meant to be (its type and required fields fit)
//    is validated alone and only its errors are reported;
//  - oneOf of required fields (a route has exactly one of static/pool/proxy): one message
//    saying which of them are there.
// Values with their own codes (ports, sizes, durations, rates, app targets) are left to
// the resolver, which reports CONFIG_BAD_PORT, CONFIG_BAD_UNIT and CONFIG_APP_FORMAT.
import type { ErrorObject } from 'ajv';
import type { JSONPath } from 'jsonc-parser';
import type { DiagnosticList } from './diagnostics';
import { describePath, orList } from './labels';
import { followRef, schemaAt, validatorFor, type SchemaNode } from './schema';
import { closest } from './suggest';

const CHECKED_IN_CODE: ReadonlySet<unknown> = new Set(
  ['listen', 'size', 'duration', 'rate', 'appTarget'].map((name) => schemaAt(`/definitions/${name}`)),
);

export function checkSchema(raw: unknown, list: DiagnosticList): void {
  const validate = validatorFor();
  if (!validate(raw)) reportErrors(validate.errors ?? [], raw, [], list);
}

/** The JSON path of an ajv instancePath below `base`; numbers where the value is an array. */
function toPath(raw: unknown, base: JSONPath, pointer: string): JSONPath {
  const path: JSONPath = [...base];
  let value = valueAt(raw, base);
  for (const token of pointer.split('/').slice(1)) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment = Array.isArray(value) ? Number(key) : key;
    path.push(segment);
    value = (value as Record<string | number, unknown> | undefined)?.[segment];
  }
  return path;
}

export function valueAt(raw: unknown, path: JSONPath): unknown {
  let value = raw;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

function isUnder(pointer: string, owner: string): boolean {
  return pointer === owner || pointer.startsWith(owner + '/');
}

function reportErrors(errors: ErrorObject[], raw: unknown, base: JSONPath, list: DiagnosticList): void {
  const owned: string[] = []; // instance pointers whose errors an anyOf branch has reported
  const oneOfNames = new Map<string, string[]>(); // pointer → names a route oneOf reported
  for (const e of errors) {
    if (e.keyword === 'anyOf') {
      reportAnyOf(e, raw, toPath(raw, base, e.instancePath), list);
      owned.push(e.instancePath);
    } else if (e.keyword === 'oneOf') {
      oneOfNames.set(e.instancePath, reportOneOf(e, raw, toPath(raw, base, e.instancePath), list));
    }
  }
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'propertyNames') continue;
    if (owned.some((p) => isUnder(e.instancePath, p))) continue;
    if (CHECKED_IN_CODE.has(e.parentSchema)) continue;
    const missing = e.keyword === 'required' ? (e.params as { missingProperty: string }).missingProperty : undefined;
    if (missing && oneOfNames.get(e.instancePath)?.includes(missing)) continue;
    const path = toPath(raw, base, e.instancePath);
    const key = `${JSON.stringify(path)}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    reportOne(e, raw, path, list);
  }
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function fitsType(node: SchemaNode, value: unknown): boolean {
  if ('const' in node) return typeOf(node.const) === typeOf(value);
  if (node.type === undefined) return true;
  const types = ([] as unknown[]).concat(node.type);
  const t = typeOf(value);
  return types.includes(t) || (t === 'integer' && types.includes('number'));
}

function hasRequired(node: SchemaNode, value: unknown): boolean {
  const required = (node.required as string[] | undefined) ?? [];
  return required.every((name) => value !== null && typeof value === 'object' && name in value);
}

function branchErrors(branch: SchemaNode, value: unknown): ErrorObject[] {
  const validate = validatorFor(branch.$ref as string);
  return validate(value) ? [] : (validate.errors ?? []);
}

/** The alternative the value was meant to be, when its type and required fields tell. */
function pickBranch(branches: SchemaNode[], value: unknown): SchemaNode | undefined {
  const nodes = branches.map((b) => ({ b, node: followRef(b) as SchemaNode }));
  const fits = nodes.filter(({ node }) => fitsType(node, value) && hasRequired(node, value)).map(({ b }) => b);
  if (fits.length === 0) {
    // Required fields missing: still clear when only one alternative has the value's type.
    const typed = nodes.filter(({ node }) => fitsType(node, value));
    return typed.length === 1 ? typed[0].b : undefined;
  }
  if (fits.length === 1) return fits[0];
  // Several fit (a pool with both "app" and "command"): the one with the fewest faults.
  const counted = fits.filter((b) => typeof b.$ref === 'string').map((b) => ({ b, n: branchErrors(b, value).length }));
  return counted.sort((x, y) => x.n - y.n)[0]?.b;
}

function reportAnyOf(e: ErrorObject, raw: unknown, path: JSONPath, list: DiagnosticList): void {
  const parent = e.parentSchema as SchemaNode;
  const value = valueAt(raw, path);
  const branch = pickBranch(parent.anyOf as SchemaNode[], value);
  if (branch && typeof branch.$ref === 'string') {
    reportErrors(branchErrors(branch, value), raw, path, list);
    return;
  }
  const what = typeof parent.errorMessage === 'string' ? sentence(parent.errorMessage) : 'none of the allowed forms fits';
  list.add('CONFIG_SCHEMA', `${describePath(path, raw)}: ${what}`, path);
}

/** A route's "exactly one of static/pool/proxy": one message naming what is there. */
function reportOneOf(e: ErrorObject, raw: unknown, path: JSONPath, list: DiagnosticList): string[] {
  const parent = e.parentSchema as SchemaNode;
  const branches = parent.oneOf as SchemaNode[];
  const names = branches.flatMap((b) => (b.required as string[] | undefined) ?? []);
  const label = describePath(path, raw);
  if (names.length !== branches.length) {
    list.add('CONFIG_SCHEMA', `${label}: ${sentence(String(parent.errorMessage ?? 'more than one of the allowed forms fits'))}`, path);
    return [];
  }
  const value = valueAt(raw, path);
  if (value === null || typeof value !== 'object') return names; // its type error says it all
  const present = names.filter((n) => n in value);
  const data = { choices: names, present };
  if (present.length === 0) {
    const at = 'path' in value ? [...path, 'path'] : path;
    list.add('CONFIG_SCHEMA', `${label} needs one of ${orList(names)} to say where its requests go`, at, { anchor: 'key', data });
  } else {
    list.add('CONFIG_SCHEMA', `${label} has ${orList(present, 'and')}; keep only one of them`, [...path, present[1]], { anchor: 'key', data });
  }
  return names;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** A schema message (written as a sentence for the editor) as the tail of one of ours. */
function sentence(s: string): string {
  return lowerFirst(s).replace(/\.$/, '');
}

function firstSentence(s: unknown): string {
  return typeof s === 'string' ? lowerFirst(s.split(/(?<=\.)\s/)[0].replace(/\.$/, '')) : '';
}

function shown(value: unknown): string {
  switch (typeOf(value)) {
    case 'string':
      return `the string ${JSON.stringify(value)}`;
    case 'integer':
    case 'number':
      return `the number ${value}`;
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    default:
      return String(value);
  }
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string in double quotes',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object { … }',
  array: 'a list [ … ]',
  null: 'null',
};

function reportOne(e: ErrorObject, raw: unknown, path: JSONPath, list: DiagnosticList): void {
  const parent = e.parentSchema as SchemaNode;
  const value = valueAt(raw, path);
  const label = describePath(path, raw);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = params.additionalProperty as string;
      const known = Object.keys((parent.properties as SchemaNode | undefined) ?? {});
      const suggestion = closest(field, known);
      const where = path.length === 0 ? 'at the top level' : `in ${label}`;
      const fix = suggestion ? `did you mean "${suggestion}"?` : 'it is ignored; remove it or use one of the known fields';
      list.add('CONFIG_UNKNOWN_FIELD', `unknown field "${field}" ${where}: ${fix} (known: ${known.join(', ')})`, [...path, field], {
        anchor: 'key',
        data: { field, known, ...(suggestion ? { suggestion } : {}) },
      });
      return;
    }
    case 'required': {
      const missing = params.missingProperty as string;
      const doc = firstSentence((followRef((parent.properties as Record<string, SchemaNode>)?.[missing]) ?? {}).description);
      list.add('CONFIG_SCHEMA', `${label} needs "${missing}"${doc ? `: ${doc}` : ''}`, path, { anchor: 'key', data: { missing } });
      return;
    }
    case 'type': {
      const expected = ([] as string[]).concat(params.type as string);
      const words = expected.map((t) => TYPE_WORDS[t] ?? t).join(' or ');
      const hint = expected.includes('string') && (typeof value === 'number' || typeof value === 'boolean') ? `; write "${value}"` : '';
      list.add('CONFIG_SCHEMA', `${label} must be ${words}, not ${shown(value)}${hint}`, path);
      return;
    }
    case 'minimum':
    case 'exclusiveMinimum':
      list.add('CONFIG_SCHEMA', `${label} must be at least ${params.limit}, not ${JSON.stringify(value)}`, path);
      return;
    case 'maximum':
    case 'exclusiveMaximum':
      list.add('CONFIG_SCHEMA', `${label} must be at most ${params.limit}, not ${JSON.stringify(value)}`, path);
      return;
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const suggestion = typeof value === 'string' ? closest(value, allowed) : undefined;
      const fix = suggestion ? `; did you mean "${suggestion}"?` : '';
      list.add('CONFIG_SCHEMA', `${label} must be ${orList(allowed)}, not ${JSON.stringify(value)}${fix}`, path, {
        data: { allowed, ...(suggestion ? { suggestion } : {}) },
      });
      return;
    }
    case 'const':
      list.add('CONFIG_SCHEMA', `${label} must be ${JSON.stringify(params.allowedValue)}`, path);
      return;
    case 'minLength':
      list.add('CONFIG_SCHEMA', `${label} must not be empty`, path);
      return;
    case 'pattern': {
      const help = typeof parent.patternErrorMessage === 'string' ? parent.patternErrorMessage : `It must match ${params.pattern}.`;
      if (e.propertyName !== undefined) {
        // A propertyNames failure: the fault is the key, e.g. a pool's name.
        const name = e.propertyName;
        list.add('CONFIG_SCHEMA', `${describePath([...path, name], raw)} has a name that cannot be used: ${sentence(help)}`, [...path, name], {
          anchor: 'key',
        });
        return;
      }
      list.add('CONFIG_SCHEMA', `${label}: ${sentence(help)} (got ${JSON.stringify(value)})`, path);
      return;
    }
    default:
      list.add('CONFIG_SCHEMA', `${label} ${e.message ?? 'is not valid'}`, path);
  }
}
