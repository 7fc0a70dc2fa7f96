// Loading a config: from text (the editor, on every keystroke: synchronous, and only
// existence checks touch the disk), from a folder (the CLI and the server: its
// servestack.json, a named file, or else what detection finds). Every path — syntax,
// schema, semantic checks, detection — reports through one DiagnosticList, so each
// diagnostic has the same shape and positions.
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getNodeValue, ParseErrorCode, parseTree, type ParseError } from 'jsonc-parser';
import { ensureDjangoStaticRoot } from '../devloop/paths';
import { detectFolder, DETECTION_SUMMARY } from './detect';
import { DiagnosticList } from './diagnostics';
import { resolveConfig, type ConfigOverrides } from './resolve';
import { checkSchema } from './schemaCheck';
import { detectedRawConfig } from './starter';
import { syntaxMessage } from './syntax';
import type { LoadResult } from './types';

export type { ConfigOverrides } from './resolve';

export const CONFIG_FILE_NAME = 'servestack.json';

export interface LoadOptions {
  /** A config file to use instead of DIR/servestack.json; relative to the current directory. */
  configFile?: string;
  overrides?: ConfigOverrides;
}

function sorted(list: DiagnosticList): LoadResult['diagnostics'] {
  return [...list.items].sort((a, b) => a.offset - b.offset);
}

/**
 * Parses and checks config text. `file` is the config's absolute path (for diagnostics and
 * the editor), `dir` the workspace folder relative paths resolve against.
 */
export function parseConfigText(text: string, file: string, dir: string, overrides: ConfigOverrides = {}): LoadResult {
  // Editors hand over text without a byte order mark; strip it so offsets agree with theirs.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const errors: ParseError[] = [];
  const root = parseTree(body, errors, { allowTrailingComma: true, disallowComments: false });
  const list = new DiagnosticList(file, body, root);
  for (const e of errors) list.addSpan('CONFIG_SYNTAX', syntaxMessage(e, body), { offset: e.offset, length: e.length });
  // A half-typed file gives misleading schema errors; its syntax errors come first.
  if (errors.length > 0 || !root) {
    if (!root && errors.length === 0) list.addSpan('CONFIG_SYNTAX', syntaxMessage({ error: ParseErrorCode.ValueExpected, offset: 0, length: 0 }, body), { offset: 0, length: 0 });
    return { diagnostics: sorted(list) };
  }
  const raw: unknown = getNodeValue(root);
  checkSchema(raw, list);
  const config = resolveConfig(raw, { dir: resolve(dir), file, detected: false, overrides, list });
  return { ...(config ? { config } : {}), diagnostics: sorted(list) };
}

/** Serves a folder without a config: what detection finds, or CONFIG_NO_APP. */
function loadDetected(dir: string, overrides: ConfigOverrides): LoadResult {
  const list = new DiagnosticList(dir);
  const found = detectFolder(dir);
  // Django's static files: collected into a folder ServeStack owns and served at STATIC_URL (server/devloop/djangoStatic.ts).
  const djangoStaticRoot = found.candidates[0]?.django?.staticUrl ? ensureDjangoStaticRoot(dir) : undefined;
  const raw = detectedRawConfig(found, djangoStaticRoot ? { djangoStaticRoot } : {});
  if (!raw) {
    list.add(
      'CONFIG_NO_APP',
      `nothing to serve was found in ${dir} (looked for ${DETECTION_SUMMARY}); run \`servestack init\` to write a starter ${CONFIG_FILE_NAME}, or write one`,
      undefined,
    );
    return { diagnostics: list.items };
  }
  const config = resolveConfig(raw, { dir, detected: true, overrides, list });
  return { ...(config ? { config } : {}), diagnostics: list.items };
}

function notFound(file: string, message: string): LoadResult {
  const list = new DiagnosticList(file);
  list.add('CONFIG_NOT_FOUND', message, undefined);
  return { diagnostics: list.items };
}

/** Loads DIR/servestack.json, or `configFile`, or else detects the app in DIR. */
export function loadConfig(dir: string, options: LoadOptions = {}): LoadResult {
  const root = resolve(dir);
  const overrides = options.overrides ?? {};
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    // reported just below, with the folder named
  }
  if (!isDir) return notFound(root, `the folder ${root} does not exist; give the folder to serve`);
  const named = options.configFile !== undefined;
  const file = named ? resolve(options.configFile as string) : join(root, CONFIG_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !named) return loadDetected(root, overrides);
    if (code === 'ENOENT') return notFound(file, `config file ${file} does not exist; fix --config, or leave it out to use ${CONFIG_FILE_NAME} in the folder`);
    return notFound(file, `cannot read ${file} (${code ?? String(err)}); check that it is a readable file`);
  }
  return parseConfigText(text, file, root, overrides);
}
