// Request metrics for the control channel: the proxy records every request (cheaply), the
// control server takes a sample once a second and streams it as a `metrics` event.
//
// Latencies go into fixed log-scale histograms (8 buckets per doubling, from 10 µs to
// ~168 s), so recording is O(1) with no allocation and a percentile is within ~4.5% of
// the exact value (and never outside the window's observed min..max).
import type { MetricsSample, RouteMetrics } from '../protocol';

export interface RequestRecord {
  /** The matched route's path (e.g. "/api/"), not the request path. */
  route: string;
  /** The pool that served it, when a pool did. */
  pool?: string;
  status: number;
  /** From the request's head arriving to the response's end. */
  ms: number;
}

export interface Metrics {
  /** Called by the proxy once per request. */
  record(r: RequestRecord): void;
  /** The same without an object, for callers on the hottest path. */
  recordRequest(route: string, pool: string | undefined, status: number, ms: number): void;
  /** Queue depth per pool (requests waiting for a worker), read at each sample. */
  setQueueDepthSource(fn: () => Record<string, number>): void;
  /** The figures since the previous sample; starts a new window. */
  sample(): MetricsSample;
}

type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';

const MIN_MS = 0.01;
const PER_OCTAVE = 8;
const OCTAVES = 24;
/** Bucket 0 holds ≤ MIN_MS; bucket i ≥ 1 holds (MIN·2^((i-1)/8), MIN·2^(i/8)]; the last also everything above. */
export const HISTOGRAM_BUCKETS = OCTAVES * PER_OCTAVE + 2;
/** Distinct route or pool names kept; more are counted under OTHER_KEY (a misused route key must not grow memory). */
const MAX_KEYS = 1000;
const OTHER_KEY = '(other)';
/** Keys without a request for this many samples are forgotten. */
const IDLE_SAMPLES_BEFORE_EVICTION = 300;

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0; // also NaN and negatives
  const i = Math.ceil(Math.log2(ms / MIN_MS) * PER_OCTAVE);
  return i >= HISTOGRAM_BUCKETS ? HISTOGRAM_BUCKETS - 1 : i < 1 ? 1 : i;
}

/** A bucket's representative value: the geometric middle of its bounds. */
function bucketValue(i: number): number {
  if (i === 0) return MIN_MS;
  return MIN_MS * Math.pow(2, (i - 0.5) / PER_OCTAVE);
}

class WindowStats {
  requests = 0;
  s2xx = 0;
  s3xx = 0;
  s4xx = 0;
  s5xx = 0;
  min = Infinity;
  max = 0;
  idleSamples = 0;
  readonly hist = new Uint32Array(HISTOGRAM_BUCKETS);

  /** `bucket`: bucketOf(ms), computed once for the total, route and pool windows. */
  add(status: number, ms: number, bucket: number): void {
    this.requests++;
    if (status >= 200) {
      if (status < 300) this.s2xx++;
      else if (status < 400) this.s3xx++;
      else if (status < 500) this.s4xx++;
      else this.s5xx++;
    }
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    this.hist[bucket]++;
  }

  percentile(q: number): number {
    if (this.requests === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.requests));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.hist[i];
      if (seen >= rank) return round(Math.min(this.max, Math.max(this.min, bucketValue(i))));
    }
    return round(this.max);
  }

  summary(seconds: number): RouteMetrics {
    return {
      requests: this.requests,
      rps: round(this.requests / seconds),
      p50Ms: this.percentile(0.5),
      p95Ms: this.percentile(0.95),
      p99Ms: this.percentile(0.99),
      status: { '2xx': this.s2xx, '3xx': this.s3xx, '4xx': this.s4xx, '5xx': this.s5xx },
    };
  }

  reset(): void {
    if (this.requests === 0) {
      this.idleSamples++;
      return;
    }
    this.requests = this.s2xx = this.s3xx = this.s4xx = this.s5xx = 0;
    this.min = Infinity;
    this.max = 0;
    this.idleSamples = 0;
    this.hist.fill(0);
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function statsFor(map: Map<string, WindowStats>, key: string): WindowStats {
  let s = map.get(key);
  if (s === undefined) {
    if (map.size >= MAX_KEYS) key = OTHER_KEY;
    s = map.get(key);
    if (s === undefined) {
      s = new WindowStats();
      map.set(key, s);
    }
  }
  return s;
}

export function createMetrics(now: () => number = () => performance.now()): Metrics {
  const total = new WindowStats();
  const routes = new Map<string, WindowStats>();
  const pools = new Map<string, WindowStats>();
  let queueDepth: () => Record<string, number> = () => ({});
  let windowStart = now();

  function recordRequest(route: string, pool: string | undefined, status: number, ms: number): void {
    const bucket = bucketOf(ms);
    total.add(status, ms, bucket);
    statsFor(routes, route).add(status, ms, bucket);
    if (pool !== undefined) statsFor(pools, pool).add(status, ms, bucket);
  }

  function drain(map: Map<string, WindowStats>, seconds: number, out: Record<string, RouteMetrics>): void {
    for (const [key, s] of map) {
      if (s.requests > 0) out[key] = s.summary(seconds);
      s.reset();
      if (s.idleSamples > IDLE_SAMPLES_BEFORE_EVICTION) map.delete(key);
    }
  }

  return {
    record: (r) => recordRequest(r.route, r.pool, r.status, r.ms),
    recordRequest,
    setQueueDepthSource(fn) {
      queueDepth = fn;
    },
    sample() {
      const t = now();
      const seconds = Math.max(0.001, (t - windowStart) / 1000);
      windowStart = t;
      const routeOut: Record<string, RouteMetrics> = {};
      const poolOut: Record<string, RouteMetrics> = {};
      drain(routes, seconds, routeOut);
      drain(pools, seconds, poolOut);
      let depths: Record<string, number> = {};
      try {
        depths = queueDepth();
      } catch {
        // A failing depth source must not stop the metrics stream; depths read as 0.
        depths = {};
      }
      const poolsWithDepth: MetricsSample['pools'] = {};
      for (const name of new Set([...Object.keys(poolOut), ...Object.keys(depths)])) {
        const m = poolOut[name] ?? { requests: 0, rps: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, status: emptyStatus() };
        poolsWithDepth[name] = { ...m, queueDepth: depths[name] ?? 0 };
      }
      const totals = total.summary(seconds);
      total.reset();
      return { time: Date.now(), rps: totals.rps, status: totals.status, routes: routeOut, pools: poolsWithDepth };
    },
  };
}

function emptyStatus(): Record<StatusClass, number> {
  return { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
}
