// The soak's figures: per stack and client kind, the faults and what followed each,
// the promises of docs/RELIABILITY.md judged from them, and the Markdown that the doc
// carries between its `soak:begin` / `soak:end` markers (re-rendered from a results JSON
// with `node bench/soak.mjs --render FILE [--update-doc]`).
import { GET_KINDS, KINDS } from './soakClients.mjs';

/** Seconds after a fault in which not-ok answers are counted against it. */
export const FAULT_WINDOW_S = 5;

const KIND_LABELS = {
  normal: 'normal GETs (hello, 1 KiB JSON)',
  slow: 'GET /slow (200 ms)',
  download: '8 MiB downloads, read fast',
  upload: '64 KiB uploads',
  stream: 'streamed answers (20 parts)',
  slowReader: 'slow readers (8 KB/s, or none)',
  slowUpload: 'slow uploads (4 B/s, then finish or abort)',
};

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmtMs = (x) => (!Number.isFinite(x) ? '–' : x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));

/** Everything the report needs from one stack's run, as plain data (this is what the JSON holds). */
export function summarizeStack({ stack, tally, faults, timeoutKills, workerPids, leftovers, serverAlive, peakRssKb, seconds, deathNote }) {
  const kinds = {};
  for (const k of KINDS) {
    const { latenciesMs, ...rest } = tally.kinds[k];
    kinds[k] = { ...rest };
    if (latenciesMs.length) kinds[k].latencyMs = { p50: percentile(latenciesMs, 50), p99: percentile(latenciesMs, 99), max: Math.max(...latenciesMs), n: latenciesMs.length, over1s: latenciesMs.filter((ms) => ms > 1000).length };
  }
  const { faults: windowed, normalFailedOutside } = faultWindows(faults, tally.events, tally.okGetsPerSecond);
  return {
    id: stack.id,
    label: stack.label,
    seconds,
    kinds,
    faults: windowed,
    timeoutKills,
    workerProcesses: workerPids,
    leftovers,
    serverAlive,
    deathNote,
    peakRssKb,
    normalFailedOutsideFaults: normalFailedOutside,
    eventsDropped: tally.eventsDropped,
    events: tally.events,
    okGetsPerSecond: tally.okGetsPerSecond.map((n) => n ?? 0),
  };
}

/**
 * What followed each fault. Each not-ok answer counts against the latest fault before it,
 * if that fault is at most FAULT_WINDOW_S old. A GET "failed after a kill" is a 5xx or a
 * connection error; a client's own 30 s timeout in a stalled pool is not evidence of a lost worker.
 */
export function faultWindows(faults, events, okGetsPerSecond) {
  const owner = (t) => faults.filter((f) => f.at <= t && t < f.at + FAULT_WINDOW_S).at(-1);
  const windowed = faults.map((f) => {
    const inWindow = events.filter((e) => owner(e.t) === f);
    const byKind = {};
    for (const e of inWindow) byKind[`${e.kind} ${e.result}`] = (byKind[`${e.kind} ${e.result}`] ?? 0) + 1;
    let okGetsAfter = 0;
    for (let sec = Math.floor(f.at); sec < Math.floor(f.at + FAULT_WINDOW_S); sec++) okGetsAfter += okGetsPerSecond?.[sec] ?? 0;
    return {
      ...f,
      okGetsAfter: okGetsPerSecond ? okGetsAfter : f.okGetsAfter,
      notOkAfter: inWindow.length,
      notOkAfterByKind: byKind,
      getFailedAfter: inWindow.filter((e) => GET_KINDS.includes(e.kind) && e.result === 'failed' && !e.why.startsWith('TIMEOUT')).length,
    };
  });
  const normalFailedOutside = events.filter((e) => e.kind === 'normal' && !owner(e.t)).length;
  return { faults: windowed, normalFailedOutside };
}

/** Recomputes the fault windows from a stored run's events, so a re-render applies the current rules. */
function refreshed(s) {
  if (!s.events) return s;
  const { faults, normalFailedOutside } = faultWindows(s.faults, s.events, s.okGetsPerSecond);
  return { ...s, faults, normalFailedOutsideFaults: normalFailedOutside };
}

const sumKinds = (s, field, kinds = KINDS) => kinds.reduce((n, k) => n + (s.kinds[k]?.[field] ?? 0), 0);

/** The promises, each judged for one stack: { kept: boolean|null, why }. null: not exercised. */
export function verdicts(s, timeoutS) {
  const kills = s.faults.filter((f) => f.kind === 'kill' && f.ok);
  const killGetFailures = kills.reduce((n, f) => n + f.getFailedAfter, 0);
  const killGetsOk = kills.reduce((n, f) => n + (f.okGetsAfter ?? 0), 0);
  const broken = s.faults.filter((f) => f.kind === 'brokenConfig');
  const brokenHeld = broken.every((f) => f.probe === 413 && f.refused) && s.serverAlive;
  const silent = sumKinds(s, 'silent');
  const truncated = sumKinds(s, 'truncated', ['normal', 'slow', 'download', 'upload', 'stream']);
  const normal = s.kinds.normal.latencyMs;
  const slowHeld = s.timeoutKills > 0 || s.normalFailedOutsideFaults > 0 || !normal || normal.max >= timeoutS * 1000;
  return {
    lostWorker: kills.length === 0
      ? { kept: null, why: 'no worker was killed' }
      : {
          // Too little traffic got through around the kills to tell (a stalled pool): not shown either way.
          kept: killGetFailures > 0 ? false : killGetsOk < 5 * kills.length ? null : true,
          why: `${killGetFailures} GETs failed (5xx or connection error, not counting client timeouts) and ${killGetsOk} were answered within ${FAULT_WINDOW_S} s of ${kills.length} kill -9${killGetFailures === 0 && killGetsOk < 5 * kills.length ? ': too few got through to tell' : ''}`,
        },
    noSilentCut: { kept: silent === 0, why: `${silent} answers ended cleanly but short or wrong; ${truncated} cut where the client could tell` },
    slowClients: {
      kept: !slowHeld,
      why: `${s.timeoutKills} workers killed for the timeout; ${s.normalFailedOutsideFaults} normal GETs not ok away from faults; slowest normal GET ${fmtMs(normal?.max)} ms (timeout ${timeoutS} s)`,
    },
    brokenConfig: broken.length === 0
      ? { kept: null, why: 'no broken config was written' }
      : { kept: brokenHeld, why: `${broken.length} broken config${broken.length === 1 ? '' : 's'}: server ${s.serverAlive ? 'up throughout' : 'went down'}, refused in its log: ${broken.filter((f) => f.refused).length}, old limit still applied: ${broken.filter((f) => f.probe === 413).length}` },
    noOrphans: { kept: s.leftovers.length === 0, why: s.leftovers.length === 0 ? `none of the ${s.workerProcesses} processes seen is left` : `left running: ${s.leftovers.map((p) => `${p.pid} (${p.comm})`).join(', ')}` },
  };
}

export const PROMISES = [
  ['lostWorker', 'A worker lost mid-request (kill -9) costs no GET'],
  ['noSilentCut', 'No answer is cut without the client being able to tell'],
  ['slowClients', 'Slow clients never hold a worker'],
  ['brokenConfig', 'A broken config never takes the server down'],
  ['noOrphans', 'No process is left behind'],
];

const mark = (v) => (v.kept === null ? 'not shown' : v.kept ? 'kept' : '**not kept**');

function cell(k) {
  if (!k || k.requests === 0) return '–';
  const parts = [`${fmtInt(k.ok)} ok`];
  if (k.failed) parts.push(`**${fmtInt(k.failed)} failed**`);
  if (k.truncated) parts.push(`**${fmtInt(k.truncated)} truncated**`);
  if (k.silent) parts.push(`**${fmtInt(k.silent)} cut silently**`);
  if (k.abandoned) parts.push(`${fmtInt(k.abandoned)} left as planned`);
  if (k.other) parts.push(`${fmtInt(k.other)} other status`);
  return `${fmtInt(k.requests)}: ${parts.join(', ')}`;
}

function faultSummary(s, kind) {
  const fs = s.faults.filter((f) => f.kind === kind);
  if (fs.length === 0) return '–';
  const notOk = fs.reduce((n, f) => n + f.notOkAfter, 0);
  const failedActions = fs.filter((f) => !f.ok).length;
  return `${fs.length}× → ${notOk} not ok${failedActions ? ` (${failedActions} action${failedActions === 1 ? '' : 's'} failed)` : ''}`;
}

/** The Markdown block: machine, command, the side-by-side tables, the verdicts. */
export function renderMarkdown(result) {
  const { facts, options } = result;
  const stacks = result.stacks.map(refreshed);
  const cols = stacks.map((s) => s.label);
  const row = (label, cells) => `| ${label} | ${cells.join(' | ')} |`;
  const head = [row('', cols), `|---|${cols.map(() => '---').join('|')}|`];
  const out = [];
  out.push(`### Soak of ${facts.date.slice(0, 10)} (${result.command})`);
  out.push('');
  out.push(`ServeStack \`${facts.servestack}\` (dist built ${result.buildTime}); ${facts.nproc} × ${facts.cpu}, ${facts.memory}, ${facts.os} (${facts.kernel}); Node ${facts.node}, ${facts.python}, Flask ${facts.flask}, nginx ${facts.nginx}, ${facts.gunicorn}. Load average at start ${facts.loadavg}.`);
  const length = options.minutes >= 1 ? `${options.minutes} min` : `${Math.round(options.minutes * 60)} s`;
  out.push(`Each stack: ${length} of mixed load, 2 workers, pool timeout ${options.timeoutS} s, the same fault schedule (${result.schedule.map((f) => f.kind).join(', ')}), one fault every ~${Math.round(result.faultSpacingS)} s. nginx talks HTTP/${options.nginxHttp10 ? '1.0 (its default)' : '1.1'} to gunicorn, buffering on (its defaults).`);
  out.push('');
  out.push('**Answers per client kind** (requests: outcomes)');
  out.push('');
  out.push(...head);
  for (const k of KINDS) out.push(row(KIND_LABELS[k], stacks.map((s) => cell(s.kinds[k]))));
  out.push('');
  out.push('**Figures**');
  out.push('');
  out.push(...head);
  const lat = (s, k) => s.kinds[k].latencyMs;
  out.push(row('normal GET p50 / p99 / max (ms)', stacks.map((s) => (lat(s, 'normal') ? `${fmtMs(lat(s, 'normal').p50)} / ${fmtMs(lat(s, 'normal').p99)} / ${fmtMs(lat(s, 'normal').max)}` : '–'))));
  out.push(row('normal GETs slower than 1 s', stacks.map((s) => fmtInt(lat(s, 'normal')?.over1s))));
  out.push(row('GET /slow p50 / p99 (ms)', stacks.map((s) => (lat(s, 'slow') ? `${fmtMs(lat(s, 'slow').p50)} / ${fmtMs(lat(s, 'slow').p99)}` : '–'))));
  out.push(row('workers killed by the server for its timeout', stacks.map((s) => fmtInt(s.timeoutKills))));
  out.push(row('worker processes seen (2 at start)', stacks.map((s) => fmtInt(s.workerProcesses))));
  out.push(row('kill -9 of a busy worker', stacks.map((s) => faultSummary(s, 'kill'))));
  out.push(row('rolling reload', stacks.map((s) => faultSummary(s, 'reload'))));
  out.push(row('scale 2 → 4 → 2', stacks.map((s) => `${faultSummary(s, 'scaleUp')}; ${faultSummary(s, 'scaleDown')}`)));
  out.push(row('config edit (body limit 1m → 2m → 1m)', stacks.map((s) => faultSummary(s, 'configEdit') + '; ' + faultSummary(s, 'configRestore'))));
  out.push(row('broken config, then restored', stacks.map((s) => faultSummary(s, 'brokenConfig'))));
  out.push(row('streamed answers that arrived all at once', stacks.map((s) => fmtInt(s.kinds.stream.buffered))));
  out.push(row('keep-alive races retried by the client', stacks.map((s) => fmtInt(sumKinds(s, 'keepAliveRetries')))));
  out.push(row('peak memory (RSS, all processes)', stacks.map((s) => `${(s.peakRssKb / 1024).toFixed(0)} MiB`)));
  out.push(row('processes left after stop', stacks.map((s) => fmtInt(s.leftovers.length))));
  out.push('');
  out.push(`"not ok" after a fault: answers of any kind, other than ok or a slow client's planned leave, that ended within ${FAULT_WINDOW_S} s of that fault and before the next one (slow clients' own failures included).`);
  out.push('');
  out.push('**Promises, by these measurements**');
  out.push('');
  out.push(...head);
  const vs = stacks.map((s) => verdicts(s, options.timeoutS));
  for (const [key, label] of PROMISES) out.push(row(label, vs.map((v) => `${mark(v[key])}: ${v[key].why}`)));
  out.push('');
  return out.join('\n');
}

/** The plain-text table printed at the end of a run. */
export function renderConsole(result) {
  const lines = [];
  for (const s of result.stacks) {
    lines.push(`\n${s.label} (${s.seconds.toFixed(0)} s${s.deathNote ? `; ${s.deathNote}` : ''})`);
    lines.push(`  ${'kind'.padEnd(11)} ${['requests', 'ok', 'failed', 'truncated', 'silent', 'abandoned', 'other'].map((h) => h.padStart(9)).join(' ')}`);
    for (const k of KINDS) {
      const c = s.kinds[k];
      lines.push(`  ${k.padEnd(11)} ${[c.requests, c.ok, c.failed, c.truncated, c.silent, c.abandoned, c.other].map((x) => String(x).padStart(9)).join(' ')}`);
    }
    const n = s.kinds.normal.latencyMs;
    lines.push(`  normal GET p50 ${fmtMs(n?.p50)} ms, p99 ${fmtMs(n?.p99)} ms, max ${fmtMs(n?.max)} ms; workers killed for the timeout: ${s.timeoutKills}; worker processes seen: ${s.workerProcesses}; left after stop: ${s.leftovers.length}`);
    for (const f of s.faults) lines.push(`  t=${f.at.toFixed(1).padStart(6)} s ${f.kind.padEnd(13)} ${f.ok ? '' : 'FAILED '}${f.detail}${f.probe !== undefined ? ` [probe ${f.probe}]` : ''} → ${f.okGetsAfter} GETs ok, ${f.notOkAfter} not ok in ${FAULT_WINDOW_S} s${f.notOkAfter ? ` (${Object.entries(f.notOkAfterByKind).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
    const errors = KINDS.flatMap((k) => Object.entries(s.kinds[k].errors).map(([why, count]) => `${k}: ${why} ×${count}`));
    if (errors.length) lines.push(`  why not ok: ${errors.slice(0, 25).join('; ')}${errors.length > 25 ? ` … (${errors.length - 25} more)` : ''}`);
  }
  return lines.join('\n');
}

export const DOC_BEGIN = '<!-- soak:begin (generated by `node bench/soak.mjs --render FILE --update-doc`; edit outside the markers) -->';
export const DOC_END = '<!-- soak:end -->';

/** DOC's text with the block between the markers replaced by MARKDOWN. */
export function replaceDocBlock(doc, markdown) {
  const begin = doc.indexOf('<!-- soak:begin');
  const end = doc.indexOf(DOC_END);
  if (begin < 0 || end < begin) throw new Error(`the doc has no ${DOC_BEGIN} … ${DOC_END} block to replace`);
  return `${doc.slice(0, begin)}${DOC_BEGIN}\n\n${markdown}\n${doc.slice(end)}`;
}
