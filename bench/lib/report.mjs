// Turns one run's figures into the dated Markdown section appended to bench/RESULTS.md
// (and printed): medians per scenario and stack, ratios against nginx + gunicorn, the
// mixed workload's fast/slow split, memory, and how busy the machine was otherwise.
import { STACKS } from './stacks.mjs';

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmtMs = (x) => (!Number.isFinite(x) || x < 0 ? '–' : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
const fmtMiB = (kb) => (kb > 0 ? (kb / 1024).toFixed(1) : '–');

/** Whether a stack's runs include enough quiet ones (at least half the wanted number). */
export function enoughQuiet(allRuns, wanted) {
  return allRuns.filter((r) => !r.noisy).length >= Math.ceil(wanted / 2);
}

/**
 * Medians of one scenario × stack: over its quiet runs when `quietOnly` (the caller
 * decides for the whole scenario, so every stack's medians are of the same kind), else
 * over every run.
 */
export function summarize(allRuns, quietOnly) {
  const quiet = allRuns.filter((r) => !r.noisy);
  const clean = quietOnly;
  const runs = quietOnly ? quiet : allRuns;
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
    wrkUsPerReq: k((r) => (r.wrkCpuS ?? NaN) * 1e6 / r.requests),
    errors: allRuns.reduce((s, r) => s + r.errorCount, 0),
    otherCores: k((r) => r.otherCores),
    otherCoresMax: Math.max(...allRuns.map((r) => r.otherCores)),
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
  };
}

export function renderSection(result) {
  const { facts, options } = result;
  const L = [];
  const when = facts.date.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  L.push(`## ${when} — ${facts.nproc} × ${facts.cpu}, ${facts.memory}, ${facts.os}`);
  L.push('');
  L.push(`Command: \`${result.command}\` (${options.runs} × ${options.duration} s per stack and scenario after a ${options.warmup} s warm-up; wrk -t${options.threads}; stacks interleaved round by round; figures are medians of the runs).`);
  L.push('');
  L.push(`- Machine: ${facts.nproc} cores (\`nproc\`), ${facts.cpu}, ${facts.memory} RAM, ${facts.os}, Linux ${facts.kernel}; wrk runs on the same cores as the servers.`);
  L.push(`- Versions: Node ${facts.node}, ${facts.python} (Flask ${facts.flask}), ${facts.nginx}, ${facts.gunicorn}, ${facts.wrk}; ServeStack \`${facts.servestack}\` (dist/cli.js built ${result.buildTime}).`);
  L.push(`- nginx: worker_processes ${options.nginxWorkers}, access_log buffered (64k) to /dev/null, sendfile on, upstream keepalive 16 (gunicorn's sync workers close every connection anyway). gunicorn: 2 sync workers, no access log. ServeStack: pool of 2 workers (threads 1), access log on stdout → /dev/null.`);
  L.push(`- Load outside the benchmark: load average ${facts.loadavg} at start; ${result.backgroundBefore.toFixed(2)} cores busy in the 2 s before the first stack started; per run, see the "other" column (cores used by processes other than the stacks, wrk and the runner, averaged over the run). Each run first waited up to ${options.quietWait} s for the machine to go quiet (below ${options.quietCores} cores; ${result.quietWaitedS.toFixed(0)} s waited in all); a run with more than ${options.noisyCores} cores of other load was marked noisy and retried (up to ${options.retries} extra runs per stack and scenario).`);
  L.push(`- Kernel: tcp_tw_reuse=${facts.sysctl.tcp_tw_reuse}, somaxconn=${facts.sysctl.somaxconn}, ip_local_port_range=${facts.sysctl.ip_local_port_range}.`);
  L.push('');

  L.push('### Throughput and latency');
  L.push('');
  L.push('A run marked * had other processes using more than ' + options.noisyCores + ' cores. A scenario\'s medians are of its quiet runs when every stack had enough of them (at least half the wanted number), else of all its runs ("all runs" in the first column). "other": median (max) cores used by other processes during the runs.');
  L.push('');
  L.push('| scenario | stack | req/s | runs (req/s) | p50 ms | p99 ms | stack CPU µs/req | wrk CPU µs/req | errors (all runs) | other (cores) |');
  L.push('|---|---|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const sc of result.scenarios) {
    for (const [id, s] of Object.entries(sc.summary)) {
      L.push(`| ${sc.name} (c=${sc.connections})${s.clean ? '' : ', all runs'} | ${STACKS[id].label} | ${fmtInt(s.rps)} | ${s.runLabels.join(' / ')} | ${fmtMs(s.p50Ms)} | ${fmtMs(s.p99Ms)} | ${fmtInt(s.cpuUsPerReq)} | ${fmtInt(s.wrkUsPerReq)} | ${s.errors} | ${s.otherCores.toFixed(2)} (max ${s.otherCoresMax.toFixed(2)}) |`);
    }
  }
  L.push('');

  L.push('### Ratios: ServeStack ÷ nginx + gunicorn');
  L.push('');
  L.push('Throughput: above 1× is better. Latency and CPU per request: below 1× is better.');
  L.push('');
  L.push('| scenario | stack | req/s | p50 | p99 | CPU/req | fast p99 (mixed) |');
  L.push('|---|---|---:|---:|---:|---:|---:|');
  for (const sc of result.scenarios) {
    const base = sc.summary.ng;
    if (!base) continue;
    for (const [id, s] of Object.entries(sc.summary)) {
      if (id === 'ng') continue;
      const fastRatio = s.fast && base.fast ? fmtRatio(s.fast.p99Ms / base.fast.p99Ms) : '';
      L.push(`| ${sc.name} | ${STACKS[id].label} | ${fmtRatio(s.rps / base.rps)} | ${fmtRatio(s.p50Ms / base.p50Ms)} | ${fmtRatio(s.p99Ms / base.p99Ms)} | ${fmtRatio(s.cpuUsPerReq / base.cpuUsPerReq)} | ${fastRatio} |`);
    }
  }
  L.push('');

  const mixed = result.scenarios.filter((sc) => Object.values(sc.summary).some((s) => s.fast));
  if (mixed.length) {
    L.push('### Mixed workloads: fast and slow requests apart');
    L.push('');
    L.push('Latency as the wrk script times each request (request written → response parsed), medians of the runs\' percentiles. A slow request takes 50 ms in the app.');
    L.push('');
    L.push('| scenario | stack | req/s | fast p50 ms | fast p90 ms | fast p99 ms | fast max ms | slow p50 ms | slow p99 ms | fast / slow answered per run | unmatched or non-200 (all runs) |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const sc of mixed) {
      for (const [id, s] of Object.entries(sc.summary)) {
        if (!s.fast) continue;
        L.push(`| ${sc.name} (c=${sc.connections})${s.clean ? '' : ', all runs'} | ${STACKS[id].label} | ${fmtInt(s.rps)} | ${fmtMs(s.fast.p50Ms)} | ${fmtMs(s.fast.p90Ms)} | ${fmtMs(s.fast.p99Ms)} | ${fmtMs(s.fast.maxMs)} | ${fmtMs(s.slow.p50Ms)} | ${fmtMs(s.slow.p99Ms)} | ${fmtInt(s.fast.n)} / ${fmtInt(s.slow.n)} | ${s.unmatched} |`);
      }
    }
    L.push('');
  }

  L.push('### Memory (whole run, all scenarios)');
  L.push('');
  L.push('Sum over the stack\'s processes. RSS counts pages shared between processes (gunicorn\'s forked workers share their parent\'s) once per process; PSS splits them.');
  L.push('');
  L.push('| stack | processes (their Σ VmHWM, MiB) | peak RSS MiB (sampled sum) | Σ VmHWM MiB | peak PSS MiB |');
  L.push('|---|---|---:|---:|---:|');
  for (const [id, m] of Object.entries(result.memory)) {
    const procs = Object.entries(m.comms).map(([c, { count, hwmKb }]) => `${count} ${c} (${fmtMiB(hwmKb)})`).join(', ');
    L.push(`| ${STACKS[id].label} | ${procs} | ${fmtMiB(m.peakRssKb)} | ${fmtMiB(m.sumHwmKb)} | ${fmtMiB(m.peakPssKb)} |`);
  }
  if (result.memory.ng) {
    for (const [id, m] of Object.entries(result.memory)) {
      if (id === 'ng') continue;
      L.push('');
      L.push(`${STACKS[id].label} ÷ nginx + gunicorn: peak RSS ${fmtRatio(m.peakRssKb / result.memory.ng.peakRssKb)}, Σ VmHWM ${fmtRatio(m.sumHwmKb / result.memory.ng.sumHwmKb)}, peak PSS ${fmtRatio(m.peakPssKb / result.memory.ng.peakPssKb)}.`);
    }
  }
  L.push('');

  const hello = result.scenarios.find((sc) => sc.name === 'hello');
  if (hello?.summary.ng && hello.summary.ss) {
    const a = hello.summary.ng, b = hello.summary.ss;
    const t = b.rps / a.rps;
    const p = b.p99Ms / a.p99Ms;
    const cpu = `CPU per request, which other load disturbs least: ${fmtRatio(b.cpuUsPerReq / a.cpuUsPerReq)} (${fmtInt(b.cpuUsPerReq)} vs ${fmtInt(a.cpuUsPerReq)} µs).`;
    if (a.clean && b.clean) {
      L.push(`**Issue #2 target** (Flask hello: at least nginx + gunicorn's throughput, p99 no worse): throughput ${fmtRatio(t)}, p99 ${fmtRatio(p)} — ${t >= 1 && p <= 1 ? 'met' : 'not met'} in this run (medians of quiet runs). ${cpu}`);
    } else {
      L.push(`**Issue #2 target** (Flask hello: at least nginx + gunicorn's throughput, p99 no worse): no verdict from this run — too few quiet runs (throughput ${fmtRatio(t)}, p99 ${fmtRatio(p)} over all runs, which other load distorts). ${cpu}`);
    }
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
