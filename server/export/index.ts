// `servestack export`: a resolved config in, the production files out. Pure generation in
// exportFiles (tests read the text); writeExport puts them into OUT with the logs/ and
// temp/ folders NGINX needs under its prefix.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import type { ServeConfig } from '../config/types';
import { ServeStackError } from '../errors';
import { djangoForExport, djangoReadme } from './django';
import { gunicornConf } from './gunicorn';
import { mimeTypesText, nginxConf } from './nginx';
import { planExport, type ExportPlan, type HostPort } from './plan';
import { exportReadme } from './readme';
import { nginxUnit, poolUnit } from './systemd';
import { exportWarnings, type ExportWarning } from './warnings';

export { parseHosts, planExport, type ExportPlan, type HostPort } from './plan';
export { exportWarnings, type ExportWarning } from './warnings';
export { DIFFERENCES } from './readme';
export { FIELD_MAP } from './mapping';

export interface ExportResult {
  plan: ExportPlan;
  /** Relative path in OUT → content. */
  files: Map<string, string>;
  warnings: ExportWarning[];
}

/** The config as written, to tell the fields a user set from defaults; undefined when detected. */
export function rawConfig(config: ServeConfig): unknown {
  if (!config.file) return undefined;
  try {
    return parseJsonc(readFileSync(config.file, 'utf8'), [], { allowTrailingComma: true });
  } catch {
    return undefined;
  }
}

export function exportFiles(served: ServeConfig, out: string, options: { hosts?: HostPort[]; raw?: unknown } = {}): ExportResult {
  // A detected Django project: ServeStack's collected folder becomes the project's STATIC_ROOT.
  const django = djangoForExport(served);
  const config = django.config;
  const plan = planExport(config, out, options.hosts);
  const warnings = exportWarnings(plan, options.raw ?? rawConfig(config));
  const files = new Map<string, string>();
  files.set('nginx.conf', nginxConf(plan));
  files.set('mime.types', mimeTypesText());
  for (const pool of plan.pools) {
    if (pool.gunicornFile) files.set(pool.gunicornFile, gunicornConf(plan, pool));
    files.set(`systemd/${pool.unit}`, poolUnit(plan, pool));
  }
  files.set('systemd/servestack-nginx.service', nginxUnit(plan));
  files.set('README.md', exportReadme(plan, warnings) + djangoReadme(django));
  return { plan, files, warnings };
}

export function writeExport(result: ExportResult): string[] {
  const out = result.plan.out;
  const written: string[] = [];
  try {
    for (const dir of ['logs', 'temp', 'systemd']) mkdirSync(path.join(out, dir), { recursive: true });
    for (const [name, text] of result.files) {
      const file = path.join(out, name);
      writeFileSync(file, text);
      written.push(file);
    }
  } catch (error) {
    throw new ServeStackError('EXPORT_FAILED', `could not write the export to ${out}: ${(error as Error).message}`, {
      hint: 'choose a folder you can write to with --out',
      cause: error,
    });
  }
  return written;
}
