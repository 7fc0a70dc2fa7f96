// --cpu-prof: where a ServeStack front's Node time went over the whole bench. Node writes
// a .cpuprofile when the process exits (ServeStack exits cleanly on SIGTERM); this sums
// its samples' self time by function and by source file, mapping the bundle
// (dist/cli.js) back to server/*.ts through its source map (node:module's SourceMap).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const sourceMaps = new Map();
function sourceMapFor(file) {
  if (!sourceMaps.has(file)) {
    let map;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = undefined; // an unreadable map: report bundle positions instead
    }
    sourceMaps.set(file, map);
  }
  return sourceMaps.get(file);
}

/** "server/proxy/front.ts:120" for a frame in the bundle, else the URL as it is. */
function place(frame, repo) {
  const { url, lineNumber, columnNumber } = frame;
  if (!url) return '';
  if (!url.startsWith('file://')) return url;
  const file = fileURLToPath(url);
  const map = sourceMapFor(file);
  const entry = map?.findEntry(lineNumber, columnNumber);
  if (entry?.originalSource) {
    const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource);
    return { file: path.relative(repo, src), line: entry.originalLine + 1 };
  }
  return { file: path.relative(repo, file), line: lineNumber + 1 };
}

/**
 * Sums every .cpuprofile in DIR. Returns { profiles, wallMs, busyMs, functions: [{ name,
 * where, selfMs }], files: [{ file, selfMs }], callers: [{ name, where, ms }] } (busy =
 * not "(idle)"), largest first. `callers` charges each sample to the nearest ServeStack
 * function on its stack (a frame in server/), so the time Node spends in its own code
 * and in native calls (socket writes, the HTTP parser) on ServeStack's behalf shows
 * under the ServeStack function that asked for it.
 */
export function summarizeCpuProfiles(dir, repo, top = 15) {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  const byFunction = new Map();
  const byFile = new Map();
  const byCaller = new Map();
  let wallUs = 0;
  let busyUs = 0;
  for (const f of files) {
    const prof = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
    wallUs += prof.endTime - prof.startTime;
    const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const ownCaller = new Map();
    const callerOf = (id) => {
      if (ownCaller.has(id)) return ownCaller.get(id);
      let key = null;
      for (let at = id; at !== undefined; at = parent.get(at)) {
        const frame = nodes.get(at).callFrame;
        const p = place(frame, repo);
        if (typeof p !== 'string' && p.file.startsWith('server/')) {
          key = `${frame.functionName || '(anonymous)'}\u0000${p.file}:${p.line}`;
          break;
        }
      }
      ownCaller.set(id, key);
      return key;
    };
    const selfUs = new Map();
    // timeDeltas[i] is the time from sample i-1 to sample i: charge it to sample i's node.
    prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
    for (const [id, us] of selfUs) {
      const frame = nodes.get(id).callFrame;
      const name = frame.functionName || (frame.url ? '(anonymous)' : '');
      if (name === '(idle)') continue;
      busyUs += us;
      const p = place(frame, repo);
      const where = typeof p === 'string' ? p : `${p.file}:${p.line}`;
      const fileKey = typeof p === 'string' ? (p === '' ? name : p.replace(/^node:internal\/.*/, 'node:internal/*')) : p.file;
      const key = `${name}\u0000${where}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + us);
      byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
      const caller = callerOf(id) ?? `${name || '(anonymous)'} (no ServeStack frame on the stack)\u0000${where}`;
      byCaller.set(caller, (byCaller.get(caller) ?? 0) + us);
    }
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    profiles: files.length,
    wallMs: wallUs / 1000,
    busyMs: busyUs / 1000,
    functions: sorted(byFunction).map(([k, us]) => {
      const [name, where] = k.split('\u0000');
      return { name, where, selfMs: us / 1000 };
    }),
    files: sorted(byFile).map(([file, us]) => ({ file, selfMs: us / 1000 })),
    callers: sorted(byCaller).map(([k, us]) => {
      const [name, where] = k.split('\u0000');
      return { name, where, ms: us / 1000 };
    }),
  };
}
