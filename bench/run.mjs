#!/usr/bin/env node
// ServeStack vs nginx + gunicorn, nginx + uvicorn and a bare node:http static server,
// side by side in one run (STYLE habit 9), against issue 14's targets.
//
//   npm run build && npm run bench            # the full run; appends to bench/RESULTS.md
//   node bench/run.mjs --quick                # a short smoke run; writes nothing
//   node bench/run.mjs --help
//
// Starts every stack on free loopback ports, each in its own process group, runs wrk
// against each in turn, stops them, removes its temp dir. Bounded in time: an overall
// deadline kills whatever it started and exits.
import { existsSync, readFileSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { SCENARIOS } from './scenarios.mjs';
import { machineFacts } from './lib/machine.mjs';
import { freePorts, httpGet, sleep } from './lib/procs.mjs';
import { guardRun, sourcesNewerThan } from './lib/runGuard.mjs';
import { machineCpu, outsideLoad, selfCpuSeconds } from './lib/procStats.mjs';
import { renderSection, RESULTS_HEADER, summarize } from './lib/report.mjs';
import { GUNICORN, NGINX, portsFor, PYTHON, STACKS } from './lib/stacks.mjs';
import { runWrk, WRK, writeWrkScript } from './lib/wrk.mjs';
import { startLooper } from './lib/looper.mjs';
import { measureColdStart } from './lib/coldStart.mjs';
import { summarizeCpuProfiles } from './lib/cpuProfile.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const fixturesDir = path.join(here, 'fixtures');
const cli = path.join(repo, 'dist', 'cli.js');

const HELP = `usage: node bench/run.mjs [options]

  --runs N            measured runs per stack and scenario (default 3)
  --duration S        seconds per run (default 10)
  --warmup S          warm-up seconds per stack and scenario (default 3)
  --threads N         wrk threads (default 2)
  --scenarios LIST    comma-separated names (a name selects every entry of its family) or ids
                      names: ${[...new Set(SCENARIOS.map((s) => s.name))].join(', ')}
                      ids:   ${SCENARIOS.map((s) => s.id).join(', ')} (default all)
  --stacks LIST       comma-separated, from: ${Object.entries(STACKS).map(([id, d]) => `${id} (${d.short})`).join(', ')} (default all;
                      each scenario runs the listed stacks it has, see bench/README.md)
  --cold-runs N       cold-start attempts (default 3; median)
  --nginx-workers W   nginx worker_processes: a number or auto (default 1, like ServeStack's one event loop)
  --quiet-wait S      before each run, wait up to S seconds for other load to drop below --quiet-cores (default 20)
  --quiet-cores C     (default 0.25)
  --noisy-cores C     a run during which other processes used more than C cores is marked noisy (default 0.3)
  --noisy-steal C     a run during which the hypervisor took more than C cores (steal time) is
                      marked noisy too, and the quiet wait waits for it as well (default 0.1)
  --retries N         extra attempts per stack and scenario to replace noisy runs (default 2)
  --quick             1 run × 3 s, 1 s warm-up, no quiet wait; writes nothing unless --write
  --write / --no-write  append to bench/RESULTS.md (default: write, except with --quick)
  --results FILE      where to append (default bench/RESULTS.md)
  --keep-tmp          keep the temp dir (configs, logs) for inspection
  --cpu-prof          run ServeStack's fronts under node --cpu-prof and summarize where their
                      time went (self time by function and source file) in the section; the
                      profiler slows them, so the run's figures are for this only
`;

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, threads: { type: 'string' },
    scenarios: { type: 'string' }, stacks: { type: 'string' }, 'nginx-workers': { type: 'string' }, 'cold-runs': { type: 'string' },
    'quiet-wait': { type: 'string' }, 'quiet-cores': { type: 'string' }, 'noisy-cores': { type: 'string' }, 'noisy-steal': { type: 'string' }, retries: { type: 'string' },
    quick: { type: 'boolean' }, write: { type: 'boolean' }, 'no-write': { type: 'boolean' },
    results: { type: 'string' }, 'keep-tmp': { type: 'boolean' }, 'cpu-prof': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const num = (v, dflt, name) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} takes a number, not '${v}'`);
  return n;
};
const options = {
  runs: num(opt.runs, opt.quick ? 1 : 3, 'runs'),
  duration: num(opt.duration, opt.quick ? 3 : 10, 'duration'),
  warmup: num(opt.warmup, opt.quick ? 1 : 3, 'warmup'),
  threads: num(opt.threads, 2, 'threads'),
  nginxWorkers: opt['nginx-workers'] ?? '1',
  quietWait: num(opt['quiet-wait'], opt.quick ? 0 : 20, 'quiet-wait'),
  quietCores: num(opt['quiet-cores'], 0.25, 'quiet-cores'),
  noisyCores: num(opt['noisy-cores'], 0.3, 'noisy-cores'),
  // 0.1 cores: at 0.04 (2 % of the machine), the first run with it (2026-12-03 13:39) could
  // not get enough quiet runs for five of ten targets within its retries.
  noisySteal: num(opt['noisy-steal'], 0.1, 'noisy-steal'),
  retries: num(opt.retries, opt.quick ? 0 : 2, 'retries'),
  coldRuns: num(opt['cold-runs'], 3, 'cold-runs'),
  write: opt['no-write'] ? false : (opt.write ?? !opt.quick),
  results: path.resolve(opt.results ?? path.join(here, 'RESULTS.md')),
};
const stackIds = (opt.stacks ?? Object.keys(STACKS).join(',')).split(',').filter(Boolean);
const scenarioNames = (opt.scenarios ?? SCENARIOS.map((s) => s.id).join(',')).split(',').filter(Boolean);
for (const id of stackIds) if (!STACKS[id]) fail(`unknown stack '${id}' (known: ${Object.keys(STACKS).join(', ')})`);
for (const n of scenarioNames) if (!SCENARIOS.some((s) => s.name === n || s.id === n)) fail(`unknown scenario '${n}' (known: ${[...new Set(SCENARIOS.flatMap((s) => [s.name, s.id]))].join(', ')})`);
if (!/^(auto|\d+)$/.test(options.nginxWorkers)) fail(`--nginx-workers takes a number or auto, not '${options.nginxWorkers}'`);
const selected = SCENARIOS.filter((s) => scenarioNames.includes(s.name) || scenarioNames.includes(s.id)).map((s) => ({ ...s, stacks: s.stacks.filter((id) => stackIds.includes(id)) }));
const coldStart = selected.find((s) => s.kind === 'cold-start' && s.stacks.length > 0 && options.coldRuns > 0);
const scenarios = selected.filter((s) => s.kind !== 'cold-start' && s.stacks.length > 0);
for (const s of selected) if (s.stacks.length === 0) process.stderr.write(`bench: skipping ${s.id}: none of its stacks (${SCENARIOS.find((x) => x.id === s.id).stacks.join(', ')}) is selected\n`);
// Only the stacks some selected scenario runs are started (in --stacks order).
const startIds = stackIds.filter((id) => scenarios.some((s) => s.stacks.includes(id)));
if (startIds.length === 0 && !coldStart) fail('nothing to run: no selected scenario has a selected stack');

/** The largest wrk thread count up to --threads that divides C (wrk gives each thread C / threads connections). */
const wrkThreads = (c) => {
  for (let t = Math.min(options.threads, c); t > 1; t--) if (c % t === 0) return t;
  return 1;
};

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}
const log = (text) => process.stderr.write(`bench: ${text}\n`);
/** How long after the last run the at-rest memory sample is taken. */
const REST_MS = 10_000;

// ── preflight ──────────────────────────────────────────────────────────────────
const pyImports = (mods) => {
  try {
    execFileSync(PYTHON, ['-c', `import ${mods}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const NEEDS = {
  nginx: () => existsSync(NGINX) || `nginx not found at ${NGINX} (apt: nginx-light)`,
  gunicorn: () => existsSync(GUNICORN) || `gunicorn not found at ${GUNICORN} (apt: gunicorn)`,
  flask: () => pyImports('flask') || `${PYTHON} cannot import flask (apt: python3-flask)`,
  fastapi: () => pyImports('fastapi') || `${PYTHON} cannot import fastapi (apt: python3-fastapi)`,
  uvicorn: () => pyImports('uvicorn, uvloop, httptools') || `${PYTHON} cannot import uvicorn, uvloop and httptools (apt: python3-uvicorn python3-uvloop python3-httptools)`,
  cli: () => existsSync(cli) || `${path.relative(process.cwd(), cli)} is missing: run \`npm run build\` first`,
};
for (const [what, file] of [['wrk (apt: wrk)', WRK], ['python3', PYTHON]]) {
  if (!existsSync(file)) fail(`${what} not found at ${file}`);
}
const needs = new Set([...startIds.flatMap((id) => STACKS[id].needs), ...(coldStart ? ['flask', 'cli'] : [])]);
for (const need of needs) {
  const ok = NEEDS[need]();
  if (ok !== true) fail(ok);
}
const buildMtime = existsSync(cli) ? statSync(cli).mtimeMs : NaN;
const newerSources = sourcesNewerThan(cli, repo);

// ── bounded in time, cleans up after itself ───────────────────────────────────
const { tmp, cleanupNow } = guardRun({ prefix: 'servestack-bench-', keepTmp: opt['keep-tmp'], log });
const wrkRuns = scenarios.reduce((n, s) => n + s.stacks.length * (options.runs + options.retries), 0);
const warmups = scenarios.reduce((n, s) => n + s.stacks.length, 0);
const quietBudgetS = Math.min(180, options.quietWait * wrkRuns);
const coldS = coldStart ? options.coldRuns * 8 : 0;
const estimateS = wrkRuns * (options.duration + 2) + warmups * (options.warmup + 1) + startIds.length * 20 + coldS + REST_MS / 1000 + 30;
const deadlineS = estimateS + quietBudgetS + 180;
const estimateMinS = estimateS - scenarios.reduce((n, s) => n + s.stacks.length * options.retries, 0) * (options.duration + 2);
const deadline = setTimeout(() => {
  log(`overran its deadline of ${deadlineS} s; killing what it started and giving up`);
  cleanupNow();
  process.exit(3);
}, deadlineS * 1000);

// ── the run ───────────────────────────────────────────────────────────────────
const notes = [];
if (newerSources.length) {
  const msg = `dist/cli.js is older than ${newerSources.length} server source file(s) (e.g. ${newerSources.slice(0, 3).join(', ')}): the figures are for the last build, not the working tree`;
  log(msg);
  notes.push(msg);
}

const facts = machineFacts({ repo, python: PYTHON, nginx: NGINX, gunicorn: GUNICORN, wrk: WRK });
log(`${facts.nproc} × ${facts.cpu}, load average ${facts.loadavg}; ~${Math.round(estimateMinS / 60)}–${Math.round((estimateS + quietBudgetS) / 60)} min (deadline ${Math.round(deadlineS / 60)} min); temp dir ${tmp}`);

/** @type {Map<string, import('./lib/stacks.mjs').RunningStack>} */
const running = new Map();
const allStacksCpu = () => [...running.values()].reduce((s, st) => s + st.cpuSeconds(), 0);

/**
 * Over `ms`: cores used by everything but our stacks, wrk and this process, and cores the
 * hypervisor took from this VM (steal time: on a shared host it cut one stack's runs by
 * up to a quarter while no process of this machine was busy; bench/RESULTS.md, 2026-12-03).
 */
async function measureOther(ms) {
  const before = outsideReading(), t0 = performance.now();
  await sleep(ms);
  return outsideLoad(before, outsideReading(), (performance.now() - t0) / 1000);
}

/** A run or cold-start attempt is noisy when other processes or the hypervisor took more than the thresholds. */
const isNoisy = (otherCores, stealCores) => otherCores > options.noisyCores || stealCores > options.noisySteal;

/** What outsideLoad compares: the machine's counters, our stacks' CPU and this process's. */
const outsideReading = () => ({ machine: machineCpu(), stacks: allStacksCpu(), self: selfCpuSeconds() });


let quietWaitedS = 0;
async function waitQuiet() {
  if (options.quietWait <= 0) return;
  const start = performance.now();
  while ((performance.now() - start) / 1000 < options.quietWait && quietWaitedS < quietBudgetS) {
    const { other, steal } = await measureOther(1000);
    if (other < options.quietCores && steal < options.noisySteal) break;
    quietWaitedS += 1;
  }
}

/** Every check of every scenario the stack is in, before anything is measured. */
async function sanityCheck(id, stack) {
  for (const sc of scenarios.filter((x) => x.stacks.includes(id))) {
    for (const check of sc.checks ?? []) {
      const res = await httpGet(`${stack.url}${check.path}`, check.headers ?? {}, 5000);
      const problem = check.test(res);
      if (problem) throw new Error(`${stack.def.label}: GET ${check.path} (for ${sc.id}) ${problem}`);
    }
  }
}

const addInto = (into, from, sign = 1) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + sign * v;
  return into;
};

async function main() {
  const started = Date.now();
  const { other: backgroundBefore, steal: stealBefore } = await measureOther(2000);
  log(`other load before starting: ${backgroundBefore.toFixed(2)} cores, steal ${stealBefore.toFixed(2)} cores`);

  // Cold start first: nothing else of ours is running yet.
  let cold;
  if (coldStart) {
    await waitQuiet();
    cold = await measureColdStart({ tmp, fixturesDir, cli, repo, runs: options.coldRuns, log });
    cold.noisy = cold.otherCores.some((other, i) => isNoisy(other, cold.stealCores[i]));
  }

  const ports = await freePorts(startIds.reduce((n, id) => n + portsFor(id), 0));
  for (const id of startIds) {
    const mine = ports.splice(0, portsFor(id));
    log(`starting ${STACKS[id].label} on 127.0.0.1:${mine[0]}`);
    const stack = await STACKS[id].start({ tmp, fixturesDir, ports: mine, nginxWorkers: options.nginxWorkers, cli, repo, cpuProf: opt['cpu-prof'] });
    running.set(id, stack);
    await sanityCheck(id, stack);
  }
  // Peak RSS by process kind while the current scenario runs (every stack is sampled).
  let scenarioPeaks = null;
  let samples = 0;
  const sampler = setInterval(() => {
    const pss = samples++ % 5 === 0;
    for (const [id, st] of running) {
      const byKind = st.sampleMemory({ pss });
      if (scenarioPeaks?.[id]) for (const [k, kb] of Object.entries(byKind)) scenarioPeaks[id][k] = Math.max(kb, scenarioPeaks[id][k] ?? 0);
    }
  }, 1000);

  const results = [];
  try {
    for (const sc of scenarios) {
      const script = writeWrkScript(tmp, sc.id, fixturesDir, sc.lua);
      const wrkConnections = sc.wrkConnections ?? sc.connections;
      const wrkOpts = (stack, durationS) => ({ url: `${stack.url}${sc.path}`, threads: wrkThreads(wrkConnections), connections: wrkConnections, durationS, script, args: sc.args, cwd: tmp });
      // One wrk run, with the scenario's looping client beside it when it has one.
      const load = async (stack, durationS) => {
        const looper = sc.looper && startLooper(`${stack.url}${sc.looper.path}`);
        let r;
        try {
          r = await runWrk(wrkOpts(stack, durationS));
        } finally {
          const looped = looper && (await looper.stop());
          if (r && looped) r.looper = looped;
        }
        return r;
      };
      scenarioPeaks = Object.fromEntries(sc.stacks.map((id) => [id, {}]));
      for (const id of sc.stacks) {
        log(`${sc.id}: warm-up ${STACKS[id].label}`);
        if (options.warmup > 0) await load(running.get(id), options.warmup);
      }
      const runs = Object.fromEntries(sc.stacks.map((id) => [id, []]));
      const cleanCount = (id) => runs[id].filter((r) => !r.noisy).length;
      // Rounds: each stack that still lacks clean runs (and has attempts left) runs once, in
      // a rotating order. A run during which other processes took more than --noisy-cores is
      // kept but marked noisy, and the stack gets another attempt (at most --retries more).
      for (let round = 0; ; round++) {
        const due = sc.stacks.filter((id) => cleanCount(id) < options.runs && runs[id].length < options.runs + options.retries);
        if (due.length === 0) break;
        const order = due.map((_, i) => due[(i + round) % due.length]);
        for (const id of order) {
          const stack = running.get(id);
          await waitQuiet();
          const outside0 = outsideReading(), own0 = stack.cpuSeconds(), kinds0 = stack.cpuByKind();
          const r = await load(stack, options.duration);
          const outside1 = outsideReading(), own1 = stack.cpuSeconds(), kinds1 = stack.cpuByKind();
          const dead = stack.died();
          if (dead) throw new Error(`${dead.name} of ${stack.def.label} exited during ${sc.id} (code ${dead.exitCode}, signal ${dead.signal}); see ${stack.notes.logs.join(', ')}`);
          r.served = r.requests + (r.looper?.n ?? 0);
          r.stackCpuS = own1 - own0;
          r.cpuUsPerReq = (r.stackCpuS * 1e6) / r.served;
          r.wrkUsPerReq = ((r.wrkCpuS ?? NaN) * 1e6) / r.requests;
          r.cpuUsPerReqByKind = Object.fromEntries(Object.entries(addInto({ ...kinds1 }, kinds0, -1)).map(([k, sec]) => [k, (Math.max(0, sec) * 1e6) / r.served]));
          r.rssAfterKb = stack.sampleMemory();
          ({ other: r.otherCores, steal: r.stealCores } = outsideLoad(outside0, outside1, r.seconds, r.wrkCpuS ?? 0));
          r.noisy = isNoisy(r.otherCores, r.stealCores);
          delete r.raw;
          runs[id].push(r);
          const kinds = r.kinds ? ` fast p99 ${(r.kinds.fast.p99_us / 1000).toFixed(1)} ms,` : '';
          const looped = r.looper ? ` (+${r.looper.n} looped ${sc.looper.path}, p50 ${r.looper.p50Ms.toFixed(0)} ms),` : '';
          const byKind = Object.entries(r.cpuUsPerReqByKind).map(([k, us]) => `${k} ${Math.round(us)}`).join(' + ');
          log(`${sc.id} #${runs[id].length} ${STACKS[id].label}: ${Math.round(r.rps)} req/s,${looped} p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms,${kinds} ${Math.round(r.cpuUsPerReq)} µs CPU/req (${byKind}; wrk ${Number.isFinite(r.wrkUsPerReq) ? Math.round(r.wrkUsPerReq) : '–'}), ${r.errorCount} errors, other load ${r.otherCores.toFixed(2)} cores, steal ${r.stealCores.toFixed(2)}${r.noisy ? ' (noisy)' : ''}`);
        }
      }
      results.push({
        id: sc.id,
        name: sc.name,
        title: sc.title,
        connections: sc.connections,
        wrkConnections,
        wrkThreads: wrkThreads(wrkConnections),
        looper: sc.looper,
        anchor: sc.anchor,
        runs,
        summary: Object.fromEntries(sc.stacks.map((id) => [id, { ...summarize(runs[id], options.runs), peakRssByKind: scenarioPeaks[id] }])),
      });
      scenarioPeaks = null;
    }
  } finally {
    clearInterval(sampler);
    // The "after the bench" samples: every stack right after the last run of all, and at
    // rest REST_MS later, as a server sits in the editor between spells of use.
    for (const st of running.values()) st.sampleMemory({ pss: true, mark: 'after' });
    log(`memory: waiting ${REST_MS / 1000} s for the at-rest sample`);
    await sleep(REST_MS);
    for (const st of running.values()) st.sampleMemory({ mark: 'rest' });
  }
  const memory = Object.fromEntries([...running].map(([id, st]) => [id, st.memorySummary()]));
  for (const [id, st] of running) {
    log(`stopping ${STACKS[id].label}`);
    await st.stop();
  }
  const cpuProfiles = {};
  for (const [id, st] of running) {
    if (!st.notes.cpuProfDir) continue;
    cpuProfiles[id] = summarizeCpuProfiles(st.notes.cpuProfDir, repo);
    if (cpuProfiles[id].profiles === 0) notes.push(`--cpu-prof: ${STACKS[id].label} wrote no profile (did it exit cleanly?)`);
  }
  if (opt['cpu-prof']) notes.push('Measured with --cpu-prof: ServeStack\'s fronts ran under the V8 profiler, which slows them; compare these figures with none but each other.');
  running.clear();

  for (const sc of results) {
    for (const [id, s] of Object.entries(sc.summary)) {
      if (s.errors > 0) notes.push(`${sc.id}, ${STACKS[id].label}: ${s.errors} wrk errors over the runs (connect/read/write/timeout/non-2xx); --keep-tmp keeps the stacks' logs.`);
      if (s.looper?.errors > 0) notes.push(`${sc.id}, ${STACKS[id].label}: ${s.looper.errors} failed looped requests over the runs.`);
      if (!s.clean) notes.push(`${sc.id}, ${STACKS[id].label}: ${s.cleanRuns} of ${s.allRuns} runs were quiet (other processes used up to ${s.otherCoresMax.toFixed(2)} cores, steal up to ${s.stealCoresMax.toFixed(2)}); its medians include noisy runs, and no target compares it.`);
    }
  }
  if (cold?.noisy) notes.push(`cold start: during an attempt other processes used up to ${Math.max(...cold.otherCores).toFixed(2)} cores, steal up to ${Math.max(...cold.stealCores).toFixed(2)}.`);
  const argv = process.argv.slice(2);
  const result = {
    facts,
    options,
    command: process.env.npm_lifecycle_event === 'bench' ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `node bench/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`,
    buildTime: Number.isFinite(buildMtime) ? new Date(buildMtime).toISOString().replace(/\.\d+Z$/, 'Z') : 'not built',
    backgroundBefore,
    stealBefore,
    quietWaitedS,
    scenarios: results,
    coldStart: cold,
    cpuProfiles,
    memory,
    notes,
    elapsedS: (Date.now() - started) / 1000,
  };
  const section = renderSection(result);
  process.stdout.write(`\n${section}\n`);
  if (options.write) {
    if (!existsSync(options.results)) writeFileSync(options.results, RESULTS_HEADER);
    const before = readFileSync(options.results, 'utf8');
    appendFileSync(options.results, `${before.endsWith('\n\n') ? '' : before.endsWith('\n') ? '\n' : '\n\n'}${section}\n`);
    log(`appended to ${path.relative(process.cwd(), options.results)}`);
  }
  if (opt['keep-tmp']) writeFileSync(path.join(tmp, 'result.json'), JSON.stringify(result, null, 2));
  log(`done in ${Math.round(result.elapsedS)} s`);
}

main()
  .then(() => {
    clearTimeout(deadline);
    cleanupNow();
  })
  .catch(async (error) => {
    log(`failed: ${error.stack ?? error.message}`);
    for (const st of running.values()) {
      for (const f of st.notes.logs) {
        try {
          const text = readFileSync(f, 'utf8').trim();
          if (text) log(`--- ${f} (last lines)\n${text.split('\n').slice(-15).join('\n')}`);
        } catch {
          // the log was never written
        }
      }
    }
    await Promise.all([...running.values()].map((st) => st.stop().catch((e) => log(`stopping ${st.def.label}: ${e.message}`))));
    clearTimeout(deadline);
    cleanupNow();
    process.exitCode = 1;
  });
