// `servestack`: serve, check, init, and the control verbs for a running server.
// Exit codes: 0 ok, 1 a problem the message explains, 2 a usage error.
import path from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatDiagnostic, loadConfig, starterConfigText } from './config';
import type { Diagnostic, ServeConfig } from './config/types';
import { CONTROL_VERBS, runControlVerb, type ControlVerb } from './control/cliVerbs';
import { DASHBOARD_USAGE, runDashboardVerb } from './control/dashboardVerb';
import { TRUST_USAGE, runTrustVerb } from './control/trustVerbs';
import { ServeStackError } from './errors';
import { exportFiles, parseHosts, writeExport } from './export';
import { importNginxFile } from './export/importNginx';
import { restoreUserEnv } from './launch';
import { startServer, type RunningServer } from './main';
import { cleanPrefix } from './proxy/trustedFront';
import { VERSION } from './version';

const USAGE = `servestack ${VERSION} — run a Python web app the way production does

usage:
  servestack serve [DIR] [--config FILE] [--port N] [--host H] [--workers N] [--python PATH] [--no-live-reload]
                   [--lan] [--lan-address ADDR] [--path-prefix PREFIX]
                                             --lan: also serve on this machine's network address (anyone on the
                                             network can open the app; --lan-address picks the address, default
                                             the first non-internal IPv4); --path-prefix: also serve under PREFIX,
                                             e.g. /absproxy/{port} behind code-server ({port}: the bound port)
                   [--debug [--debug-port N] [--debugpy-path DIR]]
                                             --debug: one worker of each pool runs under debugpy
                                             (printed: debugpy listening on 127.0.0.1:PORT)
  servestack check [DIR] [--config FILE]     diagnostics as file:line:col; exit 1 on errors
  servestack init [DIR]                      write a starter servestack.json for what DIR holds
  servestack export [DIR] --out OUT [--hosts HOST:PORT,...] [--config FILE] [--port N] [--host H] [--workers N]
                                             nginx.conf, gunicorn.conf.py, systemd units and a README in OUT
  servestack import NGINX.CONF [--out DIR] [--force]
                                             a servestack.json (in DIR, default .) from a simple nginx.conf
  servestack status|scale [POOL] N|reload [POOL]|logs [-f]|stop [--dir DIR]
  servestack debug [POOL] [--worker ID] [--all] [--pin|--pin-route PATH]|stop-debugging [POOL]|dump-stack WORKER [--dir DIR]
                                             steer the server running for DIR (default .)
  ${DASHBOARD_USAGE}
  ${TRUST_USAGE}
`;

/** The start of the line printed once the server listens (tasks' background problem matcher ends on it). */
export const READY_LINE = 'ServeStack ready: ';

type Out = (text: string) => void;
const out: Out = (text) => process.stdout.write(text + '\n');
const err: Out = (text) => process.stderr.write(text + '\n');

function printDiagnostics(diagnostics: Diagnostic[], dir: string): void {
  for (const d of diagnostics) (d.severity === 'error' ? err : out)(formatDiagnostic(d, dir));
}

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ServeStackError('CONFIG_SCHEMA', `--${name} takes a whole number, not '${value}'`);
  return n;
}

function banner(server: RunningServer, config: ServeConfig): string {
  const pools = Object.values(config.pools)
    .map((p) => (p.kind === 'python' ? `pool ${p.name}: ${p.workers} worker${p.workers === 1 ? '' : 's'} (${p.app})` : `pool ${p.name}: ${p.command}`))
    .join(', ');
  const statics = config.routes.filter((r) => r.kind === 'static').map((r) => r.path);
  const source = config.file ? path.relative(config.dir, config.file) || config.file : 'detected, no servestack.json';
  return `ServeStack ${VERSION} serving ${config.dir} at ${server.url} — ${pools || 'no pools'}${statics.length ? `; static ${statics.join(', ')}` : ''} [${source}]`;
}

async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' },
      workers: { type: 'string' }, python: { type: 'string' }, prefetch: { type: 'string' },
      lan: { type: 'boolean' }, 'lan-address': { type: 'string' }, 'path-prefix': { type: 'string' },
      'no-live-reload': { type: 'boolean' },
      debug: { type: 'boolean' }, 'debug-port': { type: 'string' }, 'debugpy-path': { type: 'string' },
    },
  });
  const pathPrefix = values['path-prefix'];
  if (pathPrefix !== undefined && (cleanPrefix(pathPrefix.replace(/\{port\}/g, '0')) ?? '') === '') {
    throw new ServeStackError('CONFIG_SCHEMA', `--path-prefix takes an absolute path such as /absproxy/{port}, not '${pathPrefix}'`);
  }
  const dir = path.resolve(positionals[0] ?? '.');
  const overrides = { port: intOption(values.port, 'port'), host: values.host, workers: intOption(values.workers, 'workers') };
  // --port 0 asks the OS for any free port (tests, scripts).
  const result = loadConfig(dir, { configFile: values.config, overrides });
  printDiagnostics(result.diagnostics, dir);
  if (!result.config || result.diagnostics.some((d) => d.severity === 'error')) {
    const message = 'not serving: fix the errors above (servestack check shows them again)';
    err(message);
    process.send?.({ type: 'fatal', code: result.diagnostics[0]?.code ?? 'CONFIG_SCHEMA', message: result.diagnostics.map((d) => formatDiagnostic(d, dir)).join('\n') || message });
    return 1;
  }
  let server: RunningServer;
  try {
    server = await startServer({
      config: result.config, python: values.python, prefetch: intOption(values.prefetch, 'prefetch'), overrides,
      ...(values['no-live-reload'] ? { liveReload: false } : {}),
      ...(values.lan || values['lan-address'] ? { lan: values['lan-address'] ? { address: values['lan-address'] } : {} } : {}), ...(pathPrefix ? { pathPrefix } : {}),
    });
  } catch (error) {
    const e = error instanceof ServeStackError ? error : undefined;
    err(e ? e.format() : `error: ${(error as Error).message}`);
    process.send?.({ type: 'fatal', code: e?.code ?? 'LISTEN_FAILED', message: e ? e.format() : (error as Error).message });
    return 1;
  }
  out(banner(server, result.config));
  if (server.lanUrl) out(`ServeStack on your network: ${server.lanUrl} (anyone on this network can open it)`);
  if (values.debug) await debugEveryPool(server, result.config, intOption(values['debug-port'], 'debug-port'), values['debugpy-path']);
  // The one stable line for tasks' problem matchers and scripts (READY_LINE): printed once everything listens.
  out(`${READY_LINE}${server.namedUrl ?? server.url}`);
  const control = server.controlInfo;
  process.send?.({ type: 'ready', url: server.url, control, ...(server.namedUrl ? { namedUrl: server.namedUrl } : {}), ...(server.lanUrl ? { lanUrl: server.lanUrl } : {}) });

  return new Promise<number>((resolve) => {
    let signals = 0;
    const stop = (why: string) => {
      if (++signals > 1) {
        err('stopping now (second signal): workers are killed');
        process.exit(130);
      }
      server.logger.info('server', why);
      void server.stop().then(() => resolve(0));
    };
    process.on('SIGINT', () => stop('interrupted; stopping (press Ctrl-C again to stop at once)'));
    process.on('SIGTERM', () => stop('terminated; stopping'));
    // Forked by the editor: when the editor goes, so do we (and our workers with us).
    process.on('disconnect', () => stop('the editor went away; stopping'));
    server.onEvent((event) => {
      if (event.type === 'stopping') setImmediate(() => void server.stop().then(() => resolve(0)));
    });
  });
}

/** `serve --debug`: one worker of each Python pool under debugpy; nothing waits for a client to attach. */
async function debugEveryPool(server: RunningServer, config: ServeConfig, firstPort: number | undefined, debugpyPath: string | undefined): Promise<void> {
  let port = firstPort ?? 0;
  for (const pool of Object.values(config.pools)) {
    if (pool.kind !== 'python') continue;
    try {
      const { workers } = await server.debugWorkers({ pool: pool.name, port, debugpyPath });
      for (const w of workers) out(`debugpy listening on 127.0.0.1:${w.port} (pool ${w.pool}, worker ${w.id}, ${w.debugpy})`);
    } catch (error) {
      err(error instanceof ServeStackError ? error.format() : `error: ${(error as Error).message}`);
    }
    if (port) port++;
  }
}

function check(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' } } });
  const dir = path.resolve(positionals[0] ?? '.');
  const result = loadConfig(dir, { configFile: values.config });
  printDiagnostics(result.diagnostics, dir);
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  out(errors || warnings ? `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}` : `ok: ${result.config?.file ?? 'detected config'} has no problems`);
  return errors > 0 ? 1 : 0;
}

function init(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const dir = path.resolve(positionals[0] ?? '.');
  const file = path.join(dir, 'servestack.json');
  if (existsSync(file)) {
    err(`${file} exists; not overwriting it (servestack check shows what it holds)`);
    return 1;
  }
  const text = starterConfigText(dir);
  writeFileSync(file, text);
  out(`wrote ${file}:\n${text}`);
  return 0;
}

function exportVerb(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, hosts: { type: 'string' }, config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, workers: { type: 'string' } },
  });
  if (!values.out) {
    err(`servestack export needs --out OUT, the folder to write nginx.conf and the rest into\n\n${USAGE}`);
    return 2;
  }
  const dir = path.resolve(positionals[0] ?? '.');
  const overrides = { port: intOption(values.port, 'port'), host: values.host, workers: intOption(values.workers, 'workers') };
  const hosts = values.hosts !== undefined ? parseHosts(values.hosts) : undefined;
  const result = loadConfig(dir, { configFile: values.config, overrides });
  printDiagnostics(result.diagnostics, dir);
  if (!result.config || result.diagnostics.some((d) => d.severity === 'error')) {
    err('not exporting: fix the errors above (servestack check shows them again) [EXPORT_FAILED]');
    return 1;
  }
  const exported = exportFiles(result.config, values.out, { hosts });
  const rel = (file: string) => path.relative(dir, file) || file;
  for (const w of exported.warnings) out(`${result.config.file ? rel(result.config.file) : dir}: warning: ${w.message} [${w.code}]`);
  const written = writeExport(exported);
  out(`wrote ${written.length} files to ${exported.plan.out}: ${written.map((f) => path.relative(exported.plan.out, f)).join(', ')}`);
  out(`check it: nginx -t -p ${exported.plan.out} -c nginx.conf`);
  return 0;
}

function importVerb(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' }, force: { type: 'boolean' } } });
  if (!positionals[0]) {
    err(`servestack import needs the nginx.conf to read\n\n${USAGE}`);
    return 2;
  }
  const source = path.resolve(positionals[0]);
  const dir = path.resolve(values.out ?? '.');
  const target = path.join(dir, 'servestack.json');
  const result = importNginxFile(source, dir);
  for (const d of result.diagnostics) (d.severity === 'error' ? err : out)(formatDiagnostic(d, process.cwd()));
  if (result.text === undefined) {
    err(`not importing ${source}: fix the errors above`);
    return 1;
  }
  if (existsSync(target) && !values.force) {
    err(`${target} exists; not overwriting it (add --force, or choose another folder with --out)`);
    return 1;
  }
  writeFileSync(target, result.text);
  out(`wrote ${target}${result.diagnostics.length ? ` (${result.diagnostics.length} directive${result.diagnostics.length === 1 ? '' : 's'} not carried over, listed above)` : ''}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'serve':
        return await serve(rest);
      case 'check':
        return check(rest);
      case 'init':
        return init(rest);
      // The dashboard of a running server (server/control/dashboardVerb.ts).
      case 'dashboard':
        return await runDashboardVerb(rest, { out, err });
      // The local CA of "tls": "auto" in the browsers' trust stores (server/control/trustVerbs.ts).
      case 'trust':
      case 'untrust':
        return await runTrustVerb(verb, rest, { out, err });
      case 'export':
        return exportVerb(rest);
      case 'import':
        return importVerb(rest);
      case '--version':
      case 'version':
        out(VERSION);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return verb === undefined ? 2 : 0;
      default:
        if ((CONTROL_VERBS as readonly string[]).includes(verb)) {
          const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: false, options: { dir: { type: 'string' } } });
          const dir = path.resolve(typeof values.dir === 'string' ? values.dir : '.');
          const verbArgs = rest.filter((a, i) => !(a === '--dir' || rest[i - 1] === '--dir' || a.startsWith('--dir=')));
          void positionals;
          return await runControlVerb(verb as ControlVerb, verbArgs, { dir, out, err });
        }
        err(`unknown command '${verb}'\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ServeStackError) err(error.format());
    else if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) err(`${(error as Error).message}\n\n${USAGE}`);
    else err(`error: ${(error as Error).stack ?? error}`);
    return (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}

if (require.main === module) {
  restoreUserEnv();
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Nothing should be left, but a stray handle must not keep a stopped server alive.
    if (process.argv[2] === 'serve') setTimeout(() => process.exit(code), 200).unref();
  });
}
