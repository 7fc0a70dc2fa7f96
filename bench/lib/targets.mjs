// Issue 14's targets, judged from one run's medians. A verdict on a timed figure is
// given only when both of its stacks' medians are of quiet runs (each had enough of
// them); otherwise the figure is shown with "no verdict". Memory is not a timing: its
// verdict stands whatever the load, but it depends on what ran before the last sample.

const MIB = 1024;
export const NODE_RSS_TARGET_MIB = 70; // the "70 MB", read as MiB (/proc reports KiB)
export const COLD_START_TARGET_MS = 1000;

const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');

/**
 * Returns [{ target, figure, verdict }] for every target whose parts ran.
 * verdict: 'met' | 'not met' | 'no verdict: …'.
 */
export function evaluateTargets(result) {
  const out = [];
  const scenario = (id) => result.scenarios.find((sc) => sc.id === id);
  const judged = (sc, ok) => (sc.clean ? (ok ? 'met' : 'not met') : 'no verdict: too few quiet runs');

  // Throughput at least `least`× the anchor's, with a p99 no worse.
  const throughput = (sc, anchor, stack, target, least) => {
    const a = sc?.summary[anchor], b = sc?.summary[stack];
    if (!a || !b) return;
    const t = b.rps / a.rps, p = b.p99Ms / a.p99Ms;
    out.push({
      target,
      figure: `${ratio(t)} req/s, p99 ${ratio(p)} (${b.p99Ms.toFixed(1)} vs ${a.p99Ms.toFixed(1)} ms)`,
      verdict: judged({ clean: a.clean && b.clean }, t >= least && p <= 1),
    });
  };

  for (const id of ['hello-c16', 'hello-c64', 'json-c16', 'json-c64']) {
    const sc = scenario(id);
    if (sc) throughput(sc, 'ng', 'ss', `${sc.name} c=${sc.connections}: ServeStack ≥ 1.6× nginx + gunicorn's req/s, p99 no worse`, 1.6);
  }
  const mixed = scenario('mixed-200');
  if (mixed?.summary.ng && mixed.summary.ss) {
    const a = mixed.summary.ng, b = mixed.summary.ss;
    const f = b.p99Ms / a.p99Ms;
    out.push({
      target: 'mixed-200: ServeStack\'s fast-request p99 ≤ 1.5× nginx + gunicorn\'s',
      figure: `${ratio(f)} (${b.p99Ms.toFixed(1)} vs ${a.p99Ms.toFixed(1)} ms)`,
      verdict: judged({ clean: a.clean && b.clean }, f <= 1.5),
    });
  }
  const stat = scenario('static');
  if (stat?.summary.node && stat.summary.ss) {
    const a = stat.summary.node, b = stat.summary.ss;
    const t = b.rps / a.rps;
    out.push({
      target: 'static 1 KiB: ServeStack ≥ 0.85× the bare node:http server\'s req/s',
      figure: `${ratio(t)} (${Math.round(b.rps).toLocaleString('en-US')} vs ${Math.round(a.rps).toLocaleString('en-US')} req/s)`,
      verdict: judged({ clean: a.clean && b.clean }, t >= 0.85),
    });
  }
  throughput(scenario('threads'), 'ngt', 'sst', 'threads c=64 (I/O-bound): ServeStack (threads 4) ≥ 1.0× nginx + gunicorn gthread\'s req/s, p99 no worse', 1);
  throughput(scenario('fastapi'), 'nu', 'ssa', 'fastapi c=64: ServeStack (asgi) ≥ 1.0× nginx + uvicorn (uvloop, httptools), p99 no worse', 1);
  const node = result.memory.ss?.kinds.node;
  if (node) {
    // At rest: what the editor's server holds between spells of use (the figure right after, beside it).
    const mib = node.restRssKb / MIB;
    out.push({
      target: `Node RSS after the bench, at rest 10 s later (ServeStack's front, default dispatch) ≤ ${NODE_RSS_TARGET_MIB} MiB`,
      figure: `${mib.toFixed(1)} MiB (right after the last run ${(node.afterRssKb / MIB).toFixed(1)}, peak ${(node.peakRssKb / MIB).toFixed(1)} MiB)`,
      verdict: mib <= NODE_RSS_TARGET_MIB ? 'met' : 'not met',
    });
  }
  const cold = result.coldStart;
  if (cold) {
    out.push({
      target: `cold start (\`servestack serve\` of the Flask app) to the first 200 ≤ ${COLD_START_TARGET_MS} ms, median`,
      figure: `${Math.round(cold.medianMs)} ms (${cold.runs.map((ms) => Math.round(ms)).join(' / ')})`,
      verdict: cold.noisy ? 'no verdict: other load or steal during an attempt' : cold.medianMs <= COLD_START_TARGET_MS ? 'met' : 'not met',
    });
  }
  return out;
}
