// Turns one run's figures into the dated Markdown section appended to bench/RESULTS.md
// (and printed): issue 14's targets, medians per scenario and stack, ratios against each
// scenario's anchor, CPU and memory by process kind, the mixed workloads' fast/slow
// split, and how busy the machine was otherwise.
import { STACKS } from './stacks.mjs';
import { median } from './stats.mjs';
import { evaluateTargets } from './targets.mjs';

export { median };

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmtMs = (x) => (!Number.isFinite(x) || x < 0 ? '–' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const fmtMiB = (kb) => (kb > 0 ? (kb / 1024).toFixed(1) : '–');

/** Whether a stack's runs include enough quiet ones (at least half the wanted number). */
export function enoughQuiet(allRuns, wanted) {
  return allRuns.filter((r) => !r.noisy).length >= Math.ceil(wanted / 2);
}

const kindsOf = (runs, field) => [...new Set(runs.flatMap((r) => Object.keys(r[field] ?? {})))];

/**
 * Medians of one scenario × stack: over its quiet runs when it has enough of them
 * (`clean`), else over every run. Each stack is judged on its own runs, so a noisy
 * comparison-only stack leaves the other stacks' figures quiet; a target or ratio
 * compares like with like only when both of its stacks are clean.
 */
export function summarize(allRuns, wanted) {
  const quiet = allRuns.filter((r) => !r.noisy);
  const clean = enoughQuiet(allRuns, wanted);
  const runs = clean ? quiet : allRuns;
  const k = (f) => median(runs.map(f));
  return {
    clean,
    cleanRuns: quiet.length,
    allRuns: allRuns.length,
    runLabels: allRuns.map((r) => `${fmtInt(r.rps)}${r.noisy ? '*' : ''}`),
    rps: k((r) => r.rps),
    p50Ms: k((r) => r.p50Ms),
    p90Ms: k((r) => r.p90Ms),
    p99Ms: k((r) => r.p99Ms),
    maxMs: Math.max(...runs.map((r) => r.maxMs)),
    cpuUsPerReq: k((r) => r.cpuUsPerReq),
    wrkUsPerReq: k((r) => r.wrkUsPerReq),
    errors: allRuns.reduce((s, r) => s + r.errorCount, 0),
    otherCores: k((r) => r.otherCores),
    otherCoresMax: Math.max(...allRuns.map((r) => r.otherCores)),
    stealCores: k((r) => r.stealCores),
    stealCoresMax: Math.max(...allRuns.map((r) => r.stealCores)),
    fast: runs[0]?.kinds && {
      p50Ms: k((r) => r.kinds.fast.p50_us / 1000),
      p90Ms: k((r) => r.kinds.fast.p90_us / 1000),
      p99Ms: k((r) => r.kinds.fast.p99_us / 1000),
      maxMs: Math.max(...runs.map((r) => r.kinds.fast.max_us / 1000)),
      n: k((r) => r.kinds.fast.n),
    },
    slow: runs[0]?.kinds && {
      p50Ms: k((r) => r.kinds.slow.p50_us / 1000),
      p99Ms: k((r) => r.kinds.slow.p99_us / 1000),
      n: k((r) => r.kinds.slow.n),
    },
    unmatched: allRuns.reduce((s, r) => s + (r.kinds?.unmatched ?? 0) + (r.kinds?.non200 ?? 0), 0),
    cpuUsPerReqByKind: Object.fromEntries(kindsOf(runs, 'cpuUsPerReqByKind').map((kind) => [kind, k((r) => r.cpuUsPerReqByKind?.[kind])])),
    rssAfterKb: allRuns.at(-1)?.rssAfterKb ?? {},
    looper: runs[0]?.looper && {
      n: k((r) => r.looper.n),
      p50Ms: k((r) => r.looper.p50Ms),
      maxMs: Math.max(...runs.map((r) => r.looper.maxMs)),
      errors: allRuns.reduce((s, r) => s + (r.looper?.errors ?? 0), 0),
    },
  };
}

const byKind = (obj, fmt) => {
  const parts = Object.entries(obj ?? {}).map(([kind, v]) => `${kind} ${fmt(v)}`);
  return parts.length ? parts.join(' + ') : '–';
};

export function renderSection(result) {
  const { facts, options } = result;
  const L = [];
  const when = facts.date.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  const sc = (x) => `${x.name}${x.connections ? ` (c=${x.connections})` : ''}`;
  L.push(`## ${when} — ${facts.nproc} × ${facts.cpu}, ${facts.memory}, ${facts.os}`);
  L.push('');
  L.push(`Command: \`${result.command}\` (${options.runs} × ${options.duration} s per stack and scenario after a ${options.warmup} s warm-up; wrk -t${options.threads} or fewer (a divisor of the connections); stacks interleaved round by round; figures are medians of the runs).`);
  L.push('');
  L.push(`- Machine: ${facts.nproc} cores (\`nproc\`), ${facts.cpu}, ${facts.memory} RAM, ${facts.os}, Linux ${facts.kernel}; wrk runs on the same cores as the servers.`);
  L.push(`- Versions: Node ${facts.node}, ${facts.python} (Flask ${facts.flask}, FastAPI ${facts.fastapi}), ${facts.nginx}, ${facts.gunicorn}, uvicorn ${facts.uvicorn} (uvloop ${facts.uvloop}, httptools ${facts.httptools}), ${facts.wrk}; ServeStack \`${facts.servestack}\` (dist/cli.js built ${result.buildTime}).`);
  L.push(`- Stacks: nginx with worker_processes ${options.nginxWorkers}, access_log buffered (64k) to /dev/null, sendfile on, upstream keepalive 16 (gunicorn's sync workers close every connection anyway; uvicorn keeps them). gunicorn: 2 sync workers, no access log. uvicorn: 2 workers, --loop uvloop --http httptools, no access log. ServeStack: pool of 2 workers (threads 1; 4 for the threads scenario, against gunicorn's gthread with 4), access log on stdout → /dev/null; the FastAPI pool with "interface": "asgi". Bare node: node:http answering the 1 KiB file from memory, with the front's V8 flags and malloc setting (server/nodeLaunch.json).`);
  L.push(`- Load outside the benchmark: load average ${facts.loadavg} at start; ${result.backgroundBefore.toFixed(2)} cores busy and ${result.stealBefore.toFixed(2)} cores of steal time in the 2 s before the first stack started; per run, see the "other" column (cores used by processes other than the stacks, wrk and the runner, averaged over the run) and the "steal" column (cores the hypervisor gave to other guests while this VM wanted them). Each run first waited up to ${options.quietWait} s for the machine to go quiet (below ${options.quietCores} cores of other load and ${options.noisySteal} of steal; ${result.quietWaitedS.toFixed(0)} s waited in all); a run with more than ${options.noisyCores} cores of other load or ${options.noisySteal} of steal was marked noisy and retried (up to ${options.retries} extra runs per stack and scenario).`);
  L.push(`- Kernel: tcp_tw_reuse=${facts.sysctl.tcp_tw_reuse}, somaxconn=${facts.sysctl.somaxconn}, ip_local_port_range=${facts.sysctl.ip_local_port_range}.`);
  L.push('');

  const targets = evaluateTargets(result);
  if (targets.length) {
    L.push('### Issue 14 targets');
    L.push('');
    L.push('From this run\'s medians. A timed target gets a verdict only when both of its stacks\' medians are of quiet runs.');
    L.push('');
    L.push('| target | this run | verdict |');
    L.push('|---|---|---|');
    for (const t of targets) L.push(`| ${t.target} | ${t.figure} | ${t.verdict.startsWith('no verdict') ? t.verdict : `**${t.verdict}**`} |`);
    L.push('');
  }

  if (result.scenarios.length) {
    L.push('### Throughput and latency');
    L.push('');
    L.push('A run marked * had other processes using more than ' + options.noisyCores + ' cores, or more than ' + options.noisySteal + ' cores of steal time. A stack\'s medians are of its quiet runs when it had enough of them (at least half the wanted number), else of all its runs ("all runs" in the first column). "other": median (max) cores used by other processes during the runs; "steal": the same for steal time (cores the hypervisor gave to other guests). For mixed-200, req/s and latencies are of the fast requests (wrk\'s 15 connections); the CPU per request counts the looped slow requests too.');
    L.push('');
    L.push('| scenario | stack | req/s | runs (req/s) | p50 ms | p99 ms | stack CPU µs/req | wrk CPU µs/req | errors (all runs) | other (cores) | steal (cores) |');
    L.push('|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of result.scenarios) {
      for (const [id, s] of Object.entries(x.summary)) {
        L.push(`| ${sc(x)}${s.clean ? '' : ', all runs'} | ${STACKS[id].label} | ${fmtInt(s.rps)} | ${s.runLabels.join(' / ')} | ${fmtMs(s.p50Ms)} | ${fmtMs(s.p99Ms)} | ${fmtInt(s.cpuUsPerReq)} | ${fmtInt(s.wrkUsPerReq)} | ${s.errors} | ${s.otherCores.toFixed(2)} (max ${s.otherCoresMax.toFixed(2)}) | ${s.stealCores.toFixed(2)} (max ${s.stealCoresMax.toFixed(2)}) |`);
      }
    }
    L.push('');

    L.push('### Ratios against each scenario\'s anchor');
    L.push('');
    L.push('The anchor is nginx + gunicorn for the Flask scenarios (its gthread workers for threads), nginx + uvicorn for fastapi, the bare node:http server for static. Throughput: above 1× is better. Latency and CPU per request: below 1× is better. "noisy": one of the two stacks\' medians include noisy runs, so the ratio is not of like with like.');
    L.push('');
    L.push('| scenario | anchor | stack | req/s | p50 | p99 | CPU/req | fast p99 (mixed) |');
    L.push('|---|---|---|---:|---:|---:|---:|---:|');
    for (const x of result.scenarios) {
      const base = x.summary[x.anchor];
      if (!base) continue;
      for (const [id, s] of Object.entries(x.summary)) {
        if (id === x.anchor) continue;
        const fast = x.looper ? fmtRatio(s.p99Ms / base.p99Ms) : s.fast && base.fast ? fmtRatio(s.fast.p99Ms / base.fast.p99Ms) : '';
        L.push(`| ${sc(x)}${s.clean && base.clean ? '' : ', noisy'} | ${STACKS[x.anchor].short} | ${STACKS[id].label} | ${fmtRatio(s.rps / base.rps)} | ${fmtRatio(s.p50Ms / base.p50Ms)} | ${fmtRatio(s.p99Ms / base.p99Ms)} | ${fmtRatio(s.cpuUsPerReq / base.cpuUsPerReq)} | ${fast} |`);
      }
    }
    L.push('');

    L.push('### CPU and memory by process kind');
    L.push('');
    L.push('CPU: utime + stime from /proc/PID/stat over the run, per request served, medians of the runs (nginx: master + worker; gunicorn and uvicorn: master + workers; ServeStack: node is the front, python its workers). RSS (MiB): the sum of VmRSS over the kind\'s processes, at its highest while the scenario ran (sampled once a second) and right after the stack\'s last run of the scenario.');
    L.push('');
    L.push('| scenario | stack | CPU µs/req by kind | peak RSS MiB | RSS after run MiB |');
    L.push('|---|---|---|---|---|');
    for (const x of result.scenarios) {
      for (const [id, s] of Object.entries(x.summary)) {
        L.push(`| ${sc(x)} | ${STACKS[id].label} | ${byKind(s.cpuUsPerReqByKind, fmtInt)} | ${byKind(s.peakRssByKind, fmtMiB)} | ${byKind(s.rssAfterKb, fmtMiB)} |`);
      }
    }
    L.push('');
  }

  const looped = result.scenarios.filter((x) => x.looper);
  if (looped.length) {
    L.push('### Fast requests beside a looping slow one');
    L.push('');
    L.push('wrk\'s connections ask for GET / (fast); one more keep-alive connection from the runner loops the slow request the whole run. Latency of the fast requests from wrk; of the looped ones as the runner timed them.');
    L.push('');
    L.push('| scenario | stack | fast req/s | fast p50 ms | fast p99 ms | fast max ms | looped per run | looped p50 ms | looped max ms |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of looped) {
      for (const [id, s] of Object.entries(x.summary)) {
        L.push(`| ${sc(x)}${s.clean ? '' : ', all runs'} | ${STACKS[id].label} | ${fmtInt(s.rps)} | ${fmtMs(s.p50Ms)} | ${fmtMs(s.p99Ms)} | ${fmtMs(s.maxMs)} | ${fmtInt(s.looper?.n)} ${x.looper.path} | ${fmtMs(s.looper?.p50Ms)} | ${fmtMs(s.looper?.maxMs)} |`);
      }
    }
    L.push('');
  }

  const mixed = result.scenarios.filter((x) => Object.values(x.summary).some((s) => s.fast));
  if (mixed.length) {
    L.push('### Mixed workloads: fast and slow requests apart');
    L.push('');
    L.push('Latency as the wrk script times each request (request written → response parsed), medians of the runs\' percentiles. A slow request takes 50 ms in the app.');
    L.push('');
    L.push('| scenario | stack | req/s | fast p50 ms | fast p90 ms | fast p99 ms | fast max ms | slow p50 ms | slow p99 ms | fast / slow answered per run | unmatched or non-200 (all runs) |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of mixed) {
      for (const [id, s] of Object.entries(x.summary)) {
        if (!s.fast) continue;
        L.push(`| ${sc(x)}${s.clean ? '' : ', all runs'} | ${STACKS[id].label} | ${fmtInt(s.rps)} | ${fmtMs(s.fast.p50Ms)} | ${fmtMs(s.fast.p90Ms)} | ${fmtMs(s.fast.p99Ms)} | ${fmtMs(s.fast.maxMs)} | ${fmtMs(s.slow.p50Ms)} | ${fmtMs(s.slow.p99Ms)} | ${fmtInt(s.fast.n)} / ${fmtInt(s.slow.n)} | ${s.unmatched} |`);
      }
    }
    L.push('');
  }

  if (result.coldStart) {
    const c = result.coldStart;
    L.push('### Cold start');
    L.push('');
    L.push(`\`node dist/cli.js serve\` of the Flask app (pool of 2 workers), spawned with nothing else of the benchmark running, GET / polled every 10 ms until the first 200: median ${fmtInt(c.medianMs)} ms over ${c.runs.length} attempts (${c.runs.map((ms) => fmtInt(ms)).join(' / ')} ms; other load ${c.otherCores.map((x) => x.toFixed(2)).join(' / ')} cores).`);
    L.push('');
  }

  if (Object.keys(result.memory).length) {
    L.push('### Memory (whole run, all scenarios)');
    L.push('');
    L.push('Sum over the stack\'s processes. RSS counts pages shared between processes (gunicorn\'s forked workers share their parent\'s) once per process; PSS splits them. "Right after": a sample taken as the last run of all ends; "at rest": 10 s later, the stacks idle, before they stop.');
    L.push('');
    L.push('| stack | processes (their Σ VmHWM, MiB) | peak RSS MiB by kind | right after the bench, RSS MiB by kind | at rest, RSS MiB by kind | peak RSS MiB (sampled sum) | Σ VmHWM MiB | peak PSS MiB |');
    L.push('|---|---|---|---|---|---:|---:|---:|');
    for (const [id, m] of Object.entries(result.memory)) {
      const kinds = Object.entries(m.kinds);
      const procs = kinds.map(([k, { count, hwmKb }]) => `${count} ${k} (${fmtMiB(hwmKb)})`).join(', ');
      const peak = kinds.map(([k, { peakRssKb }]) => `${k} ${fmtMiB(peakRssKb)}`).join(' + ');
      const after = kinds.map(([k, { afterRssKb }]) => `${k} ${fmtMiB(afterRssKb)}`).join(' + ');
      const rest = kinds.map(([k, { restRssKb }]) => `${k} ${fmtMiB(restRssKb)}`).join(' + ');
      L.push(`| ${STACKS[id].label} | ${procs} | ${peak} | ${after} | ${rest} | ${fmtMiB(m.peakRssKb)} | ${fmtMiB(m.sumHwmKb)} | ${fmtMiB(m.peakPssKb)} |`);
    }
    // The same app served two ways: ServeStack beside the stack it stands in for.
    for (const [id, anchor] of [['ss', 'ng'], ['ss0', 'ng'], ['sst', 'ngt'], ['ssa', 'nu']]) {
      const m = result.memory[id], base = result.memory[anchor];
      if (!m || !base) continue;
      L.push('');
      L.push(`${STACKS[id].label} ÷ ${STACKS[anchor].label}: peak RSS ${fmtRatio(m.peakRssKb / base.peakRssKb)}, Σ VmHWM ${fmtRatio(m.sumHwmKb / base.sumHwmKb)}, peak PSS ${fmtRatio(m.peakPssKb / base.peakPssKb)}.`);
    }
    L.push('');
  }

  for (const [id, prof] of Object.entries(result.cpuProfiles ?? {})) {
    if (!prof.profiles) continue;
    const pct = (ms) => `${((100 * ms) / prof.busyMs).toFixed(1)} %`;
    L.push(`### Where ${STACKS[id].label}'s Node time went (--cpu-prof)`);
    L.push('');
    L.push(`${fmtInt(prof.busyMs)} ms busy of ${fmtInt(prof.wallMs)} ms profiled (the whole bench, every scenario). Self time; bundle positions mapped to server/ sources through dist/cli.js.map.`);
    L.push('');
    L.push('| function | where | self ms | share of busy |');
    L.push('|---|---|---:|---:|');
    for (const f of prof.functions) L.push(`| \`${f.name || '–'}\` | ${f.where || '–'} | ${fmtInt(f.selfMs)} | ${pct(f.selfMs)} |`);
    L.push('');
    L.push('By the nearest ServeStack function on the stack (its own time plus the Node internals and native calls under it, less what other ServeStack functions below it took):');
    L.push('');
    L.push('| ServeStack function | where | ms | share of busy |');
    L.push('|---|---|---:|---:|');
    for (const f of prof.callers ?? []) L.push(`| \`${f.name}\` | ${f.where || '–'} | ${fmtInt(f.ms)} | ${pct(f.ms)} |`);
    L.push('');
    L.push('| source | self ms | share of busy |');
    L.push('|---|---:|---:|');
    for (const f of prof.files) L.push(`| ${f.file} | ${fmtInt(f.selfMs)} | ${pct(f.selfMs)} |`);
    L.push('');
  }

  if (result.notes.length) {
    L.push('Notes:');
    for (const n of result.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}

export const RESULTS_HEADER = `# Benchmark results

Each section is one run of \`npm run bench\` (\`node bench/run.mjs\`), appended by the
script; older runs stay below their headings, oldest first. See README.md for what
each scenario measures and the caveats (wrk shares the 2 cores with the servers).

`;
