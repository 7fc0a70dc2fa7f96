#!/usr/bin/env node
// Proof under faults: a mixed load with faults injected, against ServeStack and then
// nginx → gunicorn, on the same schedule (issue 13, part 7; docs/RELIABILITY.md).
//
//   npm run build && npm run soak                 # ~3 min per stack; writes bench/results/soak-*.json and .md
//   node bench/soak.mjs --quick                   # ~40 s per stack; writes nothing
//   node bench/soak.mjs --render bench/results/soak-X.json [--update-doc]
//   node bench/soak.mjs --help
//
// Loopback only, bounded in time (an overall deadline kills what it started), and it
// signals only the processes it started: each stack runs in its own process group, and
// worker pids are children of that group's leader.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineFacts } from './lib/machine.mjs';
import { freePorts, sleep } from './lib/procs.mjs';
import { guardRun, sourcesNewerThan } from './lib/runGuard.mjs';
import { DOWNLOAD, httpRequest, loop, makeClients, probeBodyLimit, STREAM_PARTS, Tally } from './lib/soakClients.mjs';
import { renderConsole, renderMarkdown, replaceDocBlock, summarizeStack } from './lib/soakReport.mjs';
import { BODY_LIMIT_MIB, SOAK_STACKS } from './lib/soakStacks.mjs';
import { GUNICORN, NGINX, PYTHON } from './lib/stacks.mjs';
import { WRK } from './lib/wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const fixturesDir = path.join(here, 'fixtures');
const cli = path.join(repo, 'dist', 'cli.js');
const docFile = path.join(repo, 'docs', 'RELIABILITY.md');

const HELP = `usage: node bench/soak.mjs [options]      (npm run soak -- [options])

  --minutes N         minutes of load per stack (default 3)
  --quick             40 s per stack; writes nothing unless --write
  --stacks LIST       comma-separated, from: ${Object.keys(SOAK_STACKS).join(', ')} (default both, in that order)
  --timeout S         the pool timeout of both stacks, seconds (ServeStack "timeout", gunicorn --timeout; default 5)
  --nginx-http10      nginx talks HTTP/1.0 to gunicorn (its default) instead of 1.1 (bench/lib/stacks.mjs, production configs)
  --write / --no-write  write bench/results/soak-<date>.json and .md (default: write, except with --quick)
  --update-doc        also replace the generated block of docs/RELIABILITY.md with this run's figures
  --keep-tmp          keep the temp dir (configs, every log) for inspection
  --render FILE       print the Markdown of a results JSON (no run); with --update-doc, put it in the doc
`;

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string' }, quick: { type: 'boolean' }, stacks: { type: 'string' }, timeout: { type: 'string' },
    write: { type: 'boolean' }, 'no-write': { type: 'boolean' }, 'update-doc': { type: 'boolean' }, 'keep-tmp': { type: 'boolean' },
    render: { type: 'string' }, 'nginx-http10': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  },
});
const log = (text) => process.stderr.write(`soak: ${text}\n`);
function fail(message) {
  log(message);
  process.exit(2);
}
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function updateDoc(markdown) {
  writeFileSync(docFile, replaceDocBlock(readFileSync(docFile, 'utf8'), markdown));
  log(`updated ${path.relative(process.cwd(), docFile)}`);
}

if (opt.render) {
  const result = JSON.parse(readFileSync(opt.render, 'utf8'));
  const md = renderMarkdown(result);
  process.stdout.write(`${md}\n`);
  if (opt['update-doc']) updateDoc(md);
  process.exit(0);
}

const num = (v, dflt, name) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} takes a positive number, not '${v}'`);
  return n;
};
const options = {
  minutes: num(opt.minutes, opt.quick ? 40 / 60 : 3, 'minutes'),
  timeoutS: num(opt.timeout, 5, 'timeout'),
  nginxHttp10: opt['nginx-http10'] ?? false,
  write: opt['no-write'] ? false : (opt.write ?? !opt.quick),
};
const stackIds = (opt.stacks ?? Object.keys(SOAK_STACKS).join(',')).split(',').filter(Boolean);
for (const id of stackIds) if (!SOAK_STACKS[id]) fail(`unknown stack '${id}' (known: ${Object.keys(SOAK_STACKS).join(', ')})`);
const durationS = options.minutes * 60;

// ── the schedule: the same faults at the same moments for every stack ──────────
const FAULTS = ['kill', 'reload', 'kill', 'scaleUp', 'kill', 'scaleDown', 'configEdit', 'kill', 'configRestore', 'brokenConfig', 'kill', 'configRestore', 'reload', 'kill'];
const schedule = FAULTS.map((kind, i) => ({ kind, atS: durationS * (0.1 + (0.75 * i) / (FAULTS.length - 1)) }));
const faultSpacingS = (durationS * 0.75) / (FAULTS.length - 1);

// The client loops: how many of each kind, and the pause between two requests of one loop.
const LOOPS = { normal: [4, 20], slow: [1, 100], download: [2, 250], upload: [1, 100], stream: [1, 200], slowReader: [3, 1000], slowUpload: [3, 1000] };

// ── preflight ──────────────────────────────────────────────────────────────────
for (const [what, file] of [['nginx (apt: nginx-light)', NGINX], ['gunicorn (apt: gunicorn)', GUNICORN], ['python3', PYTHON]]) {
  if (stackIds.includes('nginx') || what === 'python3') if (!existsSync(file)) fail(`${what} not found at ${file}`);
}
try {
  execFileSync(PYTHON, ['-c', 'import flask'], { stdio: 'ignore' });
} catch {
  fail(`${PYTHON} cannot import flask (apt: python3-flask)`);
}
if (stackIds.includes('servestack') && !existsSync(cli)) fail(`${path.relative(process.cwd(), cli)} is missing: run \`npm run build\` first`);
const buildMtime = existsSync(cli) ? statSync(cli).mtimeMs : 0;
const newerSources = sourcesNewerThan(cli, repo);

// ── bounded in time, cleans up after itself ───────────────────────────────────
const { tmp, cleanupNow } = guardRun({ prefix: 'servestack-soak-', keepTmp: opt['keep-tmp'], log });
// Per stack: the load, the longest request's own limit (a slow upload: 8 s + 30 s), start and stop.
const deadlineS = stackIds.length * (durationS + 45 + 60 + 35) + 30;
const deadline = setTimeout(() => {
  log(`overran its deadline of ${Math.round(deadlineS)} s; killing what it started and giving up`);
  cleanupNow();
  process.exit(3);
}, deadlineS * 1000);

const notes = [];
if (newerSources.length) {
  const msg = `dist/cli.js is older than ${newerSources.length} server source file(s) (e.g. ${newerSources.slice(0, 3).join(', ')}): the figures are for the last build`;
  log(msg);
  notes.push(msg);
}

/** Checks every endpoint once before the load; returns the JSON body to expect. */
async function sanityCheck(stack) {
  const get = async (p) => {
    const chunks = [];
    const r = await httpRequest(stack.url, { path: p, onData: (c) => chunks.push(c), timeoutMs: 30000 });
    return { ...r, body: Buffer.concat(chunks) };
  };
  const hello = await get('/hello');
  if (hello.status !== 200 || hello.body.toString() !== 'Hello, World!') throw new Error(`${stack.label}: GET /hello answered ${hello.status ?? hello.error}`);
  const json = await get('/json');
  if (json.status !== 200 || !JSON.parse(json.body.toString()).pad) throw new Error(`${stack.label}: GET /json answered ${json.status ?? json.error}`);
  // A download or stream that does not arrive whole is what the soak measures: noted, not fatal.
  const dl = await get('/download');
  if (dl.status !== 200 || !dl.body.equals(DOWNLOAD)) {
    notes.push(`${stack.label}: before the load, one GET /download by a fast client answered ${dl.status ?? dl.error} with ${dl.length} of ${DOWNLOAD.length} bytes (${dl.complete ? 'a clean end' : `cut: ${dl.error ?? 'incomplete'}`}) after ${Math.round(dl.ms)} ms`);
    log(notes.at(-1));
  }
  const st = await get('/stream');
  if (st.status !== 200 || !st.body.toString().endsWith(`part ${STREAM_PARTS}/${STREAM_PARTS}\n`)) {
    notes.push(`${stack.label}: before the load, GET /stream answered ${st.status ?? st.error} with ${st.length} bytes`);
    log(notes.at(-1));
  }
  const probe = await probeBodyLimit(stack.url);
  if (probe !== 413) throw new Error(`${stack.label}: a 1.5 MiB upload to /upload (limit ${BODY_LIMIT_MIB.normal} MiB) answered ${probe}, not 413`);
  return json.body.toString();
}

/** Runs one fault; config faults are followed by a probe of the body limit the server now applies. */
async function inject(stack, kind) {
  switch (kind) {
    case 'kill':
      return stack.killWorker();
    case 'reload':
      return stack.reload();
    case 'scaleUp':
      return stack.scale(4);
    case 'scaleDown':
      return stack.scale(2);
    case 'configEdit':
    case 'configRestore': {
      const mib = kind === 'configEdit' ? BODY_LIMIT_MIB.edited : BODY_LIMIT_MIB.normal;
      const want = kind === 'configEdit' ? 200 : 413;
      const r = await stack.setBodyLimit(mib);
      // Applied when the probe sees the new limit. Up to 5 s, so a stalled server cannot shift the schedule.
      let probe;
      for (const until = Date.now() + 5000; Date.now() < until; await sleep(250)) {
        probe = await probeBodyLimit(stack.url, Math.max(500, until - Date.now()));
        if (probe === want) break;
      }
      return { ...r, probe, ok: r.ok && probe === want, detail: `${r.detail}; ${probe === want ? 'applied' : `not seen applied within 5 s (probe ${probe}, want ${want})`}` };
    }
    case 'brokenConfig': {
      const refusalsBefore = stack.configRefusals();
      const r = await stack.breakConfig();
      await sleep(1500); // long enough for the server to have read (and refused) it
      const refused = stack.configRefusals() > refusalsBefore;
      const probe = await probeBodyLimit(stack.url, 5000);
      return { ...r, probe, refused, detail: `${r.detail}; ${refused ? 'refused in its log' : 'NO refusal in its log'}; the old limit ${probe === 413 ? 'still applies' : `is gone (probe ${probe})`}` };
    }
    default:
      throw new Error(`unknown fault ${kind}`);
  }
}

async function soakOne(id, ports) {
  log(`starting ${SOAK_STACKS[id].label} on 127.0.0.1:${ports[0]}`);
  const stack = await SOAK_STACKS[id].start({ tmp, fixturesDir, ports, cli, repo, timeoutS: options.timeoutS, nginxHttp10: options.nginxHttp10 });
  let deathNote;
  try {
    const expectedJson = await sanityCheck(stack);
    const clients = makeClients(stack.url, { expectedJson, timeoutS: options.timeoutS });
    const tally = new Tally();
    const t0 = tally.t0;
    const until = t0 + durationS * 1000;
    log(`${stack.label}: ${Math.round(durationS)} s of load, ${schedule.length} faults`);

    const tracker = setInterval(() => {
      stack.track();
      const dead = stack.died();
      if (dead && !deathNote) {
        deathNote = `${dead.name} exited at t=${((Date.now() - t0) / 1000).toFixed(1)} s (code ${dead.exitCode}, signal ${dead.signal})`;
        log(`${stack.label}: ${deathNote}`);
      }
    }, 1000);

    const loops = [];
    for (const [kind, [count, pauseMs]] of Object.entries(LOOPS)) {
      for (let i = 0; i < count; i++) {
        let round = i;
        const body =
          kind === 'slowReader'
            ? () => clients.slowReader(tally, { seconds: 3 + ((round * 7) % 6), read: round++ % 2 === 0 })
            : kind === 'slowUpload'
              ? () => clients.slowUpload(tally, { seconds: 2 + ((round * 5) % 7), abort: round++ % 3 === 2 })
              : () => clients[kind](tally);
        loops.push(loop(until, body, pauseMs));
      }
    }

    const faults = [];
    const faultsDone = (async () => {
      for (const f of schedule) {
        const wait = t0 + f.atS * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        const startedAt = Date.now();
        const at = (startedAt - t0) / 1000;
        let r;
        try {
          r = await inject(stack, f.kind);
        } catch (error) {
          r = { ok: false, detail: `threw: ${error.message}` };
        }
        faults.push({ kind: f.kind, at, ms: Date.now() - startedAt, ...r });
        stack.track();
        log(`${stack.label}: t=${at.toFixed(1)} s ${f.kind}: ${r.ok ? '' : 'FAILED: '}${r.detail}`);
      }
    })();

    await Promise.all([...loops, faultsDone]);
    clearInterval(tracker);
    for (const a of clients.agents) a.destroy();
    const seconds = (Date.now() - t0) / 1000;
    const serverAlive = stack.alive();
    const timeoutKills = stack.timeoutKills();
    await stack.stop();
    await sleep(200);
    const leftovers = stack.leftovers();
    if (leftovers.length) log(`${stack.label}: LEFT RUNNING after stop: ${leftovers.map((p) => `${p.pid} (${p.comm})`).join(', ')}`);
    return summarizeStack({ stack, tally, faults, timeoutKills, workerPids: stack.workerPidsSeen.size, leftovers, serverAlive, peakRssKb: stack.memoryPeakKb(), seconds, deathNote });
  } catch (error) {
    await stack.stop().catch(() => undefined);
    throw error;
  }
}

async function main() {
  const facts = machineFacts({ repo, python: PYTHON, nginx: NGINX, gunicorn: GUNICORN, wrk: WRK });
  delete facts.wrk;
  delete facts.sysctl;
  log(`${facts.nproc} × ${facts.cpu}, load average ${facts.loadavg}; ${stackIds.length} × ${Math.round(durationS)} s (deadline ${Math.round(deadlineS)} s); temp dir ${tmp}`);
  const started = Date.now();
  const stacks = [];
  for (const id of stackIds) stacks.push(await soakOne(id, await freePorts(SOAK_STACKS[id].ports)));
  const argv = process.argv.slice(2);
  const result = {
    facts,
    options,
    command: process.env.npm_lifecycle_event === 'soak' ? `npm run soak${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `node bench/soak.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`,
    buildTime: buildMtime ? new Date(buildMtime).toISOString().replace(/\.\d+Z$/, 'Z') : 'no build',
    schedule: schedule.map((f) => ({ kind: f.kind, atS: Math.round(f.atS * 10) / 10 })),
    faultSpacingS,
    loops: LOOPS,
    notes,
    stacks,
    elapsedS: (Date.now() - started) / 1000,
  };
  process.stdout.write(`${renderConsole(result)}\n`);
  const md = renderMarkdown(result);
  process.stdout.write(`\n${md}\n`);
  if (options.write) {
    const dir = path.join(here, 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = facts.date.slice(0, 16).replace(':', '-');
    writeFileSync(path.join(dir, `soak-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path.join(dir, `soak-${stamp}.md`), `${md}\n`);
    log(`wrote bench/results/soak-${stamp}.json and .md`);
  }
  if (opt['keep-tmp']) writeFileSync(path.join(tmp, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
  if (opt['update-doc']) updateDoc(md);
  log(`done in ${Math.round(result.elapsedS)} s`);
}

main()
  .then(() => {
    clearTimeout(deadline);
    cleanupNow();
  })
  .catch((error) => {
    log(`failed: ${error.stack ?? error.message}`);
    clearTimeout(deadline);
    cleanupNow();
    process.exitCode = 1;
  });
